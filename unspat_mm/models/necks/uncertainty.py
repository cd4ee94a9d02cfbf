"""Uncertainty estimator and its synthetic-artifact training signal
(UNSPAT paper §3.1 "Uncertainty-guided attention", Fig. 2).

In training, random spatiotemporal patches of each clip are replaced by the
features at the same (t, y, x) positions of another clip of the batch; a small
network learns, with BCE, to output 1 at the replaced positions and 0
elsewhere. Its sigmoid output ``U`` (B, T, H, W) in [0, 1] re-weights the
attention (see :mod:`.space2batch_attention`).
"""
import functools
import warnings
from typing import Optional, Tuple

import torch
import torch.nn as nn
from einops import rearrange, repeat
from mmengine.model import BaseModule
from torch import Tensor

from unspat_mm.registry import MODELS


def sample_artifact_mask(batch: int, frames: int, size: Tuple[int, int], ratio: float,
                         patch_size: int, generator: Optional[torch.Generator] = None,
                         device=None) -> Tensor:
    """Random square patches covering about ``ratio`` of all positions.

    Every frame is tiled by ``patch_size``-cell squares (tiling shifted by a
    random offset) and each square is chosen independently with probability
    ``ratio``, so the expected fraction of marked positions is ``ratio``.

    Returns:
        (B, T, H, W) bool mask, True where a position is to be replaced.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f'artifact ratio must be in [0, 1], got {ratio}')
    if patch_size < 1:
        raise ValueError(f'artifact patch_size must be >= 1 cell, got {patch_size}')
    h, w = size
    gh, gw = h // patch_size + 1, w // patch_size + 1
    cells = torch.rand(batch, frames, gh, gw, generator=generator, device=device) < ratio
    full = repeat(cells, 'b t gh gw -> b t (gh ph) (gw pw)', ph=patch_size, pw=patch_size)
    oy, ox = torch.randint(patch_size, (2, ), generator=generator, device=device).tolist()
    return full[:, :, oy:oy + h, ox:ox + w]


def make_synthetic_artifacts(feats: Tensor, ratio: float, patch_size: int,
                             generator: Optional[torch.Generator] = None
                             ) -> Tuple[Tensor, Tensor, Tensor]:
    """Replace random positions of each clip by another clip's (paper Fig. 2).

    Args:
        feats: (B, T, C, H, W) clip features, B >= 2.
        ratio: expected fraction of replaced (t, y, x) positions.
        patch_size: side of the replaced squares, in feature cells.
        generator: optional random generator (CPU) for reproducibility.

    Returns:
        tuple: corrupted features (B, T, C, H, W); mask (B, T, H, W) float,
        1 exactly where a position was replaced; donor (B,) index of the clip
        each clip's artifacts come from (never itself).
    """
    b, t, _, h, w = feats.shape
    if b < 2:
        raise ValueError('synthetic artifacts copy positions from *other* clips of the batch, '
                         f'so they need a batch of at least 2 clips, got {b}')
    shift = torch.randint(1, b, (b, ), generator=generator)
    donor = ((torch.arange(b) + shift) % b).to(feats.device)
    mask = sample_artifact_mask(b, t, (h, w), ratio, patch_size, generator).to(feats.device)
    corrupted = torch.where(rearrange(mask, 'b t h w -> b t 1 h w'), feats[donor], feats)
    return corrupted, mask.to(feats.dtype), donor


@functools.lru_cache(maxsize=None)
def _median_network(n: int) -> Tuple[Tuple[int, int], ...]:
    """Compare-exchange pairs (i, j), i < j, that move the ``(n - 1) // 2``-th smallest
    of n values to position ``(n - 1) // 2``: Batcher's merge-exchange sorting network
    (Knuth, TAOCP 3, Algorithm 5.2.2M), pruned to the comparators that position
    depends on (53 of 63 for n = 16)."""
    pairs = []
    top = 1 << ((n - 1).bit_length() - 1) if n > 1 else 0
    p = top
    while p > 0:
        q, r, d = top, 0, p
        while True:
            pairs += [(i, i + d) for i in range(n - d) if i & p == r]
            if q == p:
                break
            d, q, r = q - p, q >> 1, p
        p >>= 1
    needed, kept = {(n - 1) // 2}, []
    for i, j in reversed(pairs):
        if i in needed or j in needed:
            kept.append((i, j))
            needed |= {i, j}
    return tuple(reversed(kept))


def temporal_median(feats: Tensor, dim: int = 1) -> Tensor:
    """``feats.median(dim, keepdim=True).values``: the lower of the two middle values
    for an even count, as torch's median.

    Where a gradient is needed (training) it is ``torch.median`` itself, with its
    gradient. Otherwise (inference, evaluation, ONNX export) the same values come from
    a sorting network of elementwise ``minimum``/``maximum`` over the ``n`` slices:
    every output is one of the inputs, so the values are the same (bit for bit, but for
    the sign of a zero among tied zeros; ``tests/test_models/test_necks/
    test_uncertainty.py``); it is about 9x faster on
    the CPU for T = 16 than ``torch.median`` over a non-last dimension, and ONNX has
    Min/Max but no median operator (torch's exporters fail on ``torch.median``).
    """
    needs_grad = torch.is_grad_enabled() and feats.requires_grad
    if needs_grad and not torch.onnx.is_in_onnx_export():
        return feats.median(dim=dim, keepdim=True).values
    values = list(feats.unbind(dim))
    for i, j in _median_network(len(values)):
        values[i], values[j] = torch.minimum(values[i], values[j]), torch.maximum(
            values[i], values[j])
    return values[(len(values) - 1) // 2].unsqueeze(dim)


@MODELS.register_module()
class UncertaintyEstimator(BaseModule):
    """Per-position artifact probability of every frame of a clip.

    An artifact is only visible as disagreement with the rest of the clip, so
    the network sees each frame together with its difference to the clip's
    temporal median (a reference robust to the few replaced positions):
    ``[x_t, x_t - median_t(x)]`` -> 1x1 conv -> ReLU -> 3x3 conv -> ReLU ->
    1x1 conv -> one logit per position.

    Args:
        in_channels: C of the (aligned) features.
        hidden_channels: width of the small conv net.
        artifact_ratio: expected fraction of positions replaced in training.
        artifact_patch_size: side of the replaced squares, in cells.
        loss: mmpose loss config applied to (logits, mask); the default is
            mmpose's ``BCELoss`` on logits.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64,
                 artifact_ratio: float = 0.1, artifact_patch_size: int = 2,
                 loss: dict = dict(type='BCELoss', use_sigmoid=False, loss_weight=1.0),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= artifact_ratio <= 1.0:
            raise ValueError(f'artifact_ratio must be in [0, 1], got {artifact_ratio}')
        self.artifact_ratio = artifact_ratio
        self.artifact_patch_size = artifact_patch_size
        self.net = nn.Sequential(
            nn.Conv2d(2 * in_channels, hidden_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_channels, 1, 1))
        self.loss_module = MODELS.build(loss)

    def forward(self, feats: Tensor) -> Tensor:
        """(B, T, C, H, W) features -> (B, T, H, W) artifact logits."""
        b = feats.shape[0]
        reference = temporal_median(feats, dim=1)
        x = torch.cat([feats, feats - reference], dim=2)
        logits = self.net(rearrange(x, 'b t c h w -> (b t) c h w'))
        return rearrange(logits, '(b t) 1 h w -> b t h w', b=b)

    def corrupt(self, feats: Tensor, generator: Optional[torch.Generator] = None
                ) -> Tuple[Tensor, Tensor]:
        """Synthetic artifacts with this estimator's ratio and patch size.

        With a single clip there is nothing to copy from: the clip is returned
        unchanged with an all-zero mask, and a warning says so.
        """
        if feats.shape[0] < 2:
            warnings.warn('UncertaintyEstimator got a batch of 1 clip in training: no other '
                          'clip to copy artifacts from, so this step trains on clean features '
                          'only. Use a batch of >= 2 clips.')
            return feats, feats.new_zeros(feats.shape[:2] + feats.shape[3:])
        corrupted, mask, _ = make_synthetic_artifacts(
            feats, self.artifact_ratio, self.artifact_patch_size, generator)
        return corrupted, mask

    def loss(self, logits: Tensor, mask: Tensor) -> Tensor:
        """BCE between (B, T, H, W) logits and the {0, 1} artifact mask."""
        return self.loss_module(logits, mask)
