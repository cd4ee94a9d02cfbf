"""Run the ONNX files of ``tools/deployment/pytorch2onnx.py`` with onnxruntime.

``neck_head.onnx`` holds the whole head, the twist-swing IK and the body model included
(the IK's root fit is exported as Horn's quaternion method, see
:mod:`unspat_mm.models.utils.root_rotation`), so every output of ``predict`` comes from
onnxruntime and no PyTorch model is built here. The body model's arrays are constants of
that graph: changing the body model (e.g. the stand-in for SMPL) means exporting again.
"""
import hashlib
import json
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from .model_loading import InferenceSettings
from .streaming import OUTPUT_KEYS

__all__ = ['OnnxBackend', 'body_model_file_digest']

_EXPORT_AGAIN = 'tools/deployment/pytorch2onnx.py CONFIG CKPT DIR --body-model-dir BODY_DIR'


def body_model_file_digest(path: str) -> str:
    """SHA-256 hex digest of a body model file: what the exported graph's mesh depends on
    (the IK and the skinning read nothing else from the body model folder)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _check_body_model_dir(body_model_dir: str, baked: dict) -> None:
    """Raise ValueError unless ``body_model_dir`` holds the model baked into the graph."""
    from unspat_mm.models.body.smpl_layer import resolve_body_model_file
    path, _ = resolve_body_model_file(body_model_dir, baked['gender'],
                                      allow_pickle=baked['file'].endswith('.pkl'))
    if body_model_file_digest(path) != baked['sha256']:
        raise ValueError(
            f'The ONNX files have the body model {baked["file"]} baked into neck_head.onnx, '
            f'but {path} (from body_model_dir={body_model_dir!r}) is a different model. The '
            'ONNX backend cannot swap body models: export again with '
            f'`python {_EXPORT_AGAIN}`, or leave body_model_dir unset to use the baked one.')


class OnnxBackend:
    """The same interface as :class:`~unspat_mm.apis.streaming.TorchBackend`
    (``features`` per frame, ``predict`` per window), served by onnxruntime alone: the
    IK and the body model are part of ``neck_head.onnx``.

    Args:
        onnx_dir (str): folder with ``backbone.onnx``, ``neck_head.onnx``, ``meta.json``
            and ``faces.npy``.
        device (str): ``'cpu'``, or a CUDA device when onnxruntime-gpu is installed.
        body_model_dir (str, optional): only checked: the body model is baked into
            ``neck_head.onnx`` at export, so a folder given here must hold the very same
            model file (same bytes), else ValueError (export again to change it).
            Defaults to None: the baked model.
    """

    def __init__(self, onnx_dir: str, device: str = 'cpu',
                 body_model_dir: Optional[str] = None):
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
        lacking = [k for k in OUTPUT_KEYS if k not in meta.get('outputs', ())]
        if lacking or 'body_model' not in meta:
            raise ValueError(f'{onnx_dir}/neck_head.onnx lacks the outputs {lacking} (an '
                             'export from before the IK and the body model were part of the '
                             'graph); export again with tools/deployment/pytorch2onnx.py.')
        if body_model_dir is not None:
            _check_body_model_dir(body_model_dir, meta['body_model'])
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
        """(B, T, C, h, w) windows -> the middle frames' outputs keyed by
        :data:`OUTPUT_KEYS` (float32; metres, ``theta`` (B, 72) axis-angle radians,
        ``vertices`` (B, 6890, 3), ``uncertainty`` (B, T, h, w)), all from onnxruntime."""
        values = self.neck_head.run(list(OUTPUT_KEYS),
                                    {'windows': windows.cpu().numpy().astype(np.float32)})
        return {k: np.asarray(v, dtype=np.float32) for k, v in zip(OUTPUT_KEYS, values)}
