"""Export an UNSPAT checkpoint to ONNX: the per-frame backbone and the per-window neck + head.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT OUT_DIR [--body-model-dir DIR]
        [--opset 17] [--verify]

Writes into OUT_DIR:

- ``backbone.onnx``: ``frames`` (N, 3, H, W) float RGB 0..255 crops -> ``features``
  (N, C, h, w) (normalisation included);
- ``neck_head.onnx``: ``windows`` (B, T, C, h, w) -> the middle frames' outputs of
  ``unspat_mm.apis.streaming.OUTPUT_KEYS``: ``theta`` (B, 72) axis-angle radians,
  ``betas`` (B, 10), ``camera`` (B, 3), ``keypoints3d`` (B, 29, 3) root-relative metres,
  ``keypoints2d`` (B, 29, 2), ``joints24`` (B, 24, 3) and ``vertices`` (B, 6890, 3) metres,
  ``sigma`` (B, 29) and ``uncertainty`` (B, T, h, w). The whole head is in the graph, the
  twist-swing IK and the body model included: the IK's root fit, an SVD in PyTorch (ONNX
  has none), is traced as Horn's quaternion method (``unspat_mm.models.utils.
  root_rotation``, equal to the SVD fit where the fit is well posed), and the body model's
  arrays become constants of the graph, so changing the body model (stand-in -> SMPL)
  needs a new export;
- ``meta.json`` (window and crop settings, focal, what the checkpoint was trained with,
  the baked body model's file, gender and SHA-256, whether it is the stand-in, the graph's
  outputs) and ``faces.npy`` (mesh faces, for the overlay).

``UNSPATInferencer(..., backend='onnx', onnx_dir=OUT_DIR)`` (demo: ``--backend onnx
--onnx-dir OUT_DIR``) runs them with onnxruntime alone. The TorchScript exporter is used
(``dynamo=False``): torch 2.13's dynamo exporter fails on smplx's indexing.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from einops import rearrange
from torch import nn

import unspat_mm  # noqa: F401
from unspat_mm.apis import encode_middle_frame, init_unspat_model
from unspat_mm.apis.onnx_backend import body_model_file_digest
from unspat_mm.apis.streaming import OUTPUT_KEYS
from unspat_mm.models.utils import axis_angle_to_matrix, geodesic_distance

META_FILE, FACES_FILE = 'meta.json', 'faces.npy'


class BackboneForExport(nn.Module):
    """Normalisation (the model's data preprocessor) and the per-frame backbone."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        pre = model.data_preprocessor
        self.flip = bool(getattr(pre, 'bgr_to_rgb', False))
        self.register_buffer('mean', pre.mean.clone(), persistent=False)
        self.register_buffer('std', pre.std.clone(), persistent=False)

    def forward(self, frames):
        if self.flip:
            frames = frames.flip(1)
        return self.model.extract_feat(((frames - self.mean) / self.std)[None])[0]


class NeckHeadForExport(nn.Module):
    """The neck for the middle frame and the whole head: network, twist-swing IK and body
    model, returning :data:`OUTPUT_KEYS` (the root fit and the skinning switch to their
    exportable forms while ``torch.onnx.export`` traces)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, windows):
        feats, uncertainty = encode_middle_frame(self.model.neck, windows)
        out = self.model.head(feats)
        if uncertainty is None:
            uncertainty = windows.new_zeros(windows.shape[:2] + windows.shape[3:])
        out = dict(out, uncertainty=uncertainty)
        return tuple(out[k] for k in OUTPUT_KEYS)


def baked_body_model(body_model):
    """What ``meta.json`` records of the body model baked into ``neck_head.onnx`` (the
    ONNX backend refuses a ``body_model_dir`` holding another one)."""
    return dict(file=osp.basename(body_model.model_path), gender=body_model.gender,
                sha256=body_model_file_digest(body_model.model_path),
                is_standin=bool(body_model.is_standin))


def _export(module, example, path, input_name, output_names, opset):
    dynamic = {input_name: {0: 'batch'}}
    dynamic.update({name: {0: 'batch'} for name in output_names})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(module, (example, ), path, input_names=[input_name],
                          output_names=list(output_names), dynamic_axes=dynamic,
                          opset_version=opset, dynamo=False)


def export(config, checkpoint, out_dir, body_model_dir=None, opset=17, cfg_options=None):
    """Export both graphs into ``out_dir`` (written to a temporary folder, then moved);
    returns ``(paths, model, info)``."""
    model, _, info = init_unspat_model(config, checkpoint, 'cpu', body_model_dir, cfg_options)
    settings = info['settings']
    w, h = settings.crop_cfg['input_size'] if not isinstance(
        settings.crop_cfg['input_size'], int) else (settings.crop_cfg['input_size'], ) * 2
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.onnx-export-', dir=parent)
    try:
        frames = torch.rand(2, 3, h, w) * 255
        backbone = BackboneForExport(model).eval()
        with torch.no_grad():
            feats = backbone(frames)
        _export(backbone, frames, osp.join(tmp, 'backbone.onnx'), 'frames', ['features'], opset)
        windows = feats[:1, None].repeat(2, settings.num_frames, 1, 1, 1)
        windows = windows + torch.randn_like(windows) * 0.1
        _export(NeckHeadForExport(model).eval(), windows, osp.join(tmp, 'neck_head.onnx'),
                'windows', OUTPUT_KEYS, opset)
        body_model = model.head.body_model
        np.save(osp.join(tmp, FACES_FILE), body_model.faces.cpu().numpy())
        meta = dict(config_name=settings.config_name, num_frames=settings.num_frames,
                    frame_interval=settings.frame_interval, crop_cfg=settings.crop_cfg,
                    focal=float(model.head.focal), summary=info['summary'],
                    is_standin=bool(info['is_standin']), outputs=list(OUTPUT_KEYS),
                    body_model=baked_body_model(body_model), opset=opset,
                    torch=torch.__version__)
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(meta, f, indent=1, default=list)
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        for name in sorted(os.listdir(tmp)):
            os.replace(osp.join(tmp, name), osp.join(out_dir, name))
            paths.append(osp.join(out_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths, model, info


def compare_outputs(a, b):
    """Largest differences of two backends' ``predict`` dicts: ``theta`` as the largest
    angle (radians) between corresponding joint rotations, since axis-angle vectors of one
    rotation differ by up to 2 pi near the angle pi; the other keys as the largest absolute
    difference (metres for the positions)."""
    diffs = {k: float(np.abs(a[k] - b[k]).max()) for k in OUTPUT_KEYS if k != 'theta'}
    rotmats = [axis_angle_to_matrix(rearrange(torch.from_numpy(x['theta']).double(),
                                              'b (j c) -> b j c', c=3)) for x in (a, b)]
    diffs['theta'] = float(geodesic_distance(*rotmats).max())
    return diffs


def verify(model, out_dir, num_frames, seed=0, num_windows=2):
    """onnxruntime against PyTorch on ``num_windows`` windows of random crops; returns the
    largest differences (:func:`compare_outputs`, and ``features``)."""
    from unspat_mm.apis.onnx_backend import OnnxBackend
    from unspat_mm.apis.streaming import TorchBackend
    onnx, torch_backend = OnnxBackend(out_dir), TorchBackend(model)
    rng = np.random.default_rng(seed)
    size = onnx.info['settings'].crop_cfg['input_size']
    crops = rng.integers(0, 256, (num_windows * num_frames, size[1], size[0], 3),
                         dtype=np.uint8)
    feats_onnx, feats_torch = onnx.features(crops), torch_backend.features(crops)
    windows = rearrange(feats_torch, '(b t) c h w -> b t c h w', t=num_frames)
    diffs = compare_outputs(onnx.predict(windows), torch_backend.predict(windows))
    diffs['features'] = float((feats_onnx - feats_torch).abs().max())
    return diffs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out_dir')
    parser.add_argument('--body-model-dir', help='body model folder (overrides the config); '
                        'it is baked into neck_head.onnx')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch on a random window')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        paths, model, info = export(args.config, args.checkpoint, args.out_dir,
                                    args.body_model_dir, args.opset)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'Wrote {", ".join(paths)} in {time.perf_counter() - start:.1f} s')
    if args.verify:
        diffs = verify(model, args.out_dir, info['settings'].num_frames)
        for key, value in diffs.items():
            what = 'max joint rotation angle (rad)' if key == 'theta' else 'max |difference|'
            print(f'onnxruntime vs pytorch {key}: {what} {value:.2e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
