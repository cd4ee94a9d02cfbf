"""Parameters and FLOPs of an unspat-mm model, part by part, for one clip.

    python tools/analysis/get_flops.py CONFIG [--num-frames 16] [--input-size 256]

What is counted (mmengine's FlopAnalyzer, fvcore's convention): one fused
multiply-add is ONE flop, i.e. the "FLOPs" column is multiply-accumulates (MACs),
which is also what the video-HMR papers' tables report (they used fvcore/thop).
Elementwise ops (activations, normalisation, softmax) are not counted, and
``scaled_dot_product_attention`` is counted by the handle registered below
(QK^T and AV: 2 * L_q * L_k * d MACs per head batch).
Parts:
  * backbone - per-frame ResNet on all T frames of the clip;
  * neck     - SAM + uncertainty estimator + Space2Batch transformer on the clip;
  * head     - deconvolutions, 1x1 conv and regressors (the paper config: HybrIK's,
               fc1/fc2 MLP included) on the middle frame only (the model predicts
               the middle frame);
  * IK+SMPL  - the parameter-free geometry (IK, LBS), reported apart.
The paper's Table 3 (11.8M parameters, 12.9 GFLOPs) is compared with neck+head:
the backbone is a frozen, pre-extracted feature extractor in that protocol. With
HybrIK's head no FFN ratio of the neck lands within +-15% of both numbers (see
``UNSPATNeck``'s ``ffn_ratio``); the deviations are printed, not hidden.
"""
import argparse
import contextlib
import os.path as osp
import tempfile
from typing import Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config, DictAction
from torch import nn

import unspat_mm  # noqa: F401
from unspat_mm.registry import MODELS

PAPER = dict(params_m=11.8, gflops=12.9)


def _sdpa_flop_jit(inputs, outputs):
    """MACs of aten::scaled_dot_product_attention: QK^T plus attention @ V."""
    from mmengine.analysis.jit_handles import get_shape
    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return 2 * batch * q[-2] * k[-2] * q[-1]


class _NeckFeats(nn.Module):
    def __init__(self, neck):
        super().__init__()
        self.neck = neck

    def forward(self, clip):
        return self.neck(clip).feats


class _HeadNetwork(nn.Module):
    """The learned part of IKMeshHead (what Table 3 can count)."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, feats):
        h = self.head
        heatmaps = h.final_conv(h.deconv(feats))
        pooled = h.mlp(feats.mean(dim=(2, 3)))
        return heatmaps, h.twist_fc(pooled), h.beta_fc(pooled), h.camera_fc(pooled), \
            h.sigma_fc(pooled)


def count(module: nn.Module, inputs: Tuple) -> Tuple[float, float]:
    """(parameters in millions, GFLOPs as GMACs) of ``module(*inputs)``."""
    analyzer = FlopAnalyzer(module, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', _sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    params = parameter_count(module)['']
    return params / 1e6, analyzer.total() / 1e9


@contextlib.contextmanager
def body_model_for_counting(cfg: Config):
    """Parameter/FLOP counts do not depend on the body model's values: use a
    temporary stand-in when the configured directory holds no SMPL file."""
    body = cfg.model.head.body_model
    model_dir = body.get('model_dir', '')
    if any(osp.exists(osp.join(model_dir, f'SMPL_NEUTRAL.{ext}')) for ext in ('npz', 'pkl')):
        yield
        return
    from unspat_mm.datasets.synthetic.standin_body import make_standin_files
    with tempfile.TemporaryDirectory(prefix='unspat_standin_') as tmp:
        make_standin_files(tmp)
        body.model_dir = tmp
        print(f'(no SMPL in {model_dir!r}: counting with the stand-in body model, which has '
              "SMPL's exact array sizes)")
        yield


def analyse(cfg: Config, num_frames: int, input_size: int) -> dict:
    with body_model_for_counting(cfg):
        model = MODELS.build(cfg.model).eval()
    clip = torch.zeros(1, num_frames, 3, input_size, input_size)
    rows = {}
    with torch.no_grad():
        if model.backbone is not None:
            rows['backbone'] = count(model.backbone, (clip[0], ))
            feats = model.extract_feat(clip)
        else:
            feats = torch.zeros(1, num_frames, cfg.model.neck.in_channels, 8, 8)
        rows['neck'] = count(_NeckFeats(model.neck), (feats, ))
        middle = model.neck(feats).feats
        rows['head'] = count(_HeadNetwork(model.head), (middle, ))
        whole_head = count(model.head, (middle, ))
        rows['IK+SMPL'] = (whole_head[0] - rows['head'][0], whole_head[1] - rows['head'][1])
    rows['neck+head'] = tuple(a + b for a, b in zip(rows['neck'], rows['head']))
    return rows


def format_table(rows: dict, num_frames: int, input_size: int) -> str:
    lines = [f'one clip: T={num_frames}, {input_size}x{input_size}; FLOPs = multiply-adds',
             '| part | params (M) | GFLOPs |', '|---|---:|---:|']
    for name, (params, gflops) in rows.items():
        lines.append(f'| {name} | {params:.2f} | {gflops:.2f} |')
    params, gflops = rows['neck+head']
    lines.append(f'| paper Table 3 (UNSPAT) | {PAPER["params_m"]:.1f} | {PAPER["gflops"]:.1f} |')
    lines.append(f'neck+head vs paper: params {100 * (params / PAPER["params_m"] - 1):+.1f}%, '
                 f'FLOPs {100 * (gflops / PAPER["gflops"] - 1):+.1f}%')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Parameters and FLOPs per part')
    parser.add_argument('config')
    parser.add_argument('--num-frames', type=int, default=None,
                        help='clip length (default: the config\'s num_frames)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='square crop size (default: the config\'s input_size)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    num_frames = args.num_frames or cfg.get('num_frames', 16)
    input_size = args.input_size or cfg.get('input_size', (256, 256))[0]
    rows = analyse(cfg, num_frames, input_size)
    print(format_table(rows, num_frames, input_size))
    return rows


if __name__ == '__main__':
    main()
