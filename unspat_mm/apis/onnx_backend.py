"""Run the ONNX files of ``tools/deployment/pytorch2onnx.py`` with onnxruntime."""
import json
import os.path as osp
from typing import Dict

import numpy as np
import torch
from torch import Tensor

from .model_loading import InferenceSettings
from .streaming import OUTPUT_KEYS

__all__ = ['OnnxBackend', 'NETWORK_OUTPUTS']

# outputs of neck_head.onnx: the network's, before the IK and the body model
NETWORK_OUTPUTS = ('keypoints3d', 'keypoints2d', 'twist', 'betas', 'camera', 'sigma',
                   'uncertainty')


class OnnxBackend:
    """The same interface as :class:`~unspat_mm.apis.streaming.TorchBackend`
    (``features`` per frame, ``predict`` per window), served by onnxruntime; the IK and
    the body model (no learned weights) run in PyTorch, rebuilt from the exported head
    config.

    Args:
        onnx_dir (str): folder with ``backbone.onnx``, ``neck_head.onnx``, ``meta.json``
            and ``faces.npy``.
        device (str): ``'cpu'``, or a CUDA device when onnxruntime-gpu is installed.
        body_model_dir (str, optional): body model folder (default: the one used at
            export).
    """

    def __init__(self, onnx_dir: str, device: str = 'cpu', body_model_dir: str = None):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError('The ONNX backend needs onnxruntime: pip install -r '
                              'requirements/inference.txt') from err
        if not onnx_dir or not osp.isdir(onnx_dir):
            raise FileNotFoundError(f'ONNX folder {onnx_dir!r} does not exist; write it with '
                                    'tools/deployment/pytorch2onnx.py CONFIG CKPT DIR.')
        files = ('backbone.onnx', 'neck_head.onnx', 'meta.json', 'faces.npy')
        missing = [f for f in files if not osp.isfile(osp.join(onnx_dir, f))]
        if missing:
            raise FileNotFoundError(f'{onnx_dir} lacks {missing}; export again with '
                                    'tools/deployment/pytorch2onnx.py.')
        with open(osp.join(onnx_dir, 'meta.json')) as f:
            meta = json.load(f)
        providers = ['CUDAExecutionProvider', 'CPUExecutionProvider'] \
            if str(device).startswith('cuda') else ['CPUExecutionProvider']
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.backbone = ort.InferenceSession(osp.join(onnx_dir, 'backbone.onnx'), options,
                                             providers=providers)
        self.neck_head = ort.InferenceSession(osp.join(onnx_dir, 'neck_head.onnx'), options,
                                              providers=providers)
        crop = dict(meta['crop_cfg'])
        crop['input_size'] = tuple(crop['input_size'])
        settings = InferenceSettings(meta['num_frames'], meta['frame_interval'], crop,
                                     meta['config_name'])
        head_cfg = dict(meta['head_cfg'])
        if body_model_dir is not None:
            head_cfg['body_model'] = dict(head_cfg['body_model'], model_dir=body_model_dir)
        from unspat_mm.registry import MODELS
        self.head = MODELS.build(head_cfg).eval()  # only its IK and body model are used
        self.info = dict(settings=settings, summary=meta['summary'] + ' (ONNX export)',
                         is_standin=meta['is_standin'], focal=meta['focal'],
                         faces=np.load(osp.join(onnx_dir, 'faces.npy'), allow_pickle=False),
                         config_name=meta['config_name'], meta={})

    def features(self, crops: np.ndarray) -> Tensor:
        """(N, H, W, 3) uint8 RGB crops -> (N, C, h, w) features (a torch tensor, for
        the ring buffers)."""
        frames = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        return torch.from_numpy(self.backbone.run(None, {'frames': frames})[0])

    def predict(self, windows: Tensor) -> Dict[str, np.ndarray]:
        """(B, T, C, h, w) windows -> the middle frames' outputs (see ``OUTPUT_KEYS``)."""
        values = self.neck_head.run(None, {'windows': windows.cpu().numpy().astype(np.float32)})
        out = {k: torch.from_numpy(v) for k, v in zip(NETWORK_OUTPUTS, values)}
        with torch.no_grad():
            out.update(self.head.mesh_from_keypoints(out['keypoints3d'], out['twist'],
                                                     out['betas'], sigma=out['sigma']))
        return {k: out[k].float().numpy() for k in OUTPUT_KEYS}
