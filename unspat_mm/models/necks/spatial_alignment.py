"""Spatial Alignment Module (SAM), UNSPAT paper §3.1, eq. 1.

For every adjacent frame, SAM predicts a scale-and-translation affine warp
``A = [[s, 0, tx], [0, s, ty]]`` that aligns it to the current (middle) frame,
from the visual similarity of the two feature maps, and warps it bilinearly.

Coordinate convention (the one of ``F.affine_grid``/``F.grid_sample`` with
``align_corners=False``): positions are normalised so that the feature map
spans [-1, 1] along x (width) and y (height); cell ``i`` of ``W`` has its
centre at ``(2 i + 1) / W - 1``, so one cell is ``2 / W`` wide. The warped map
at output position ``p`` samples the input at ``s * p + (tx, ty)``. Hence if
the adjacent frame shows the content ``k`` cells further right than the
current frame (``adj[..., x] == cur[..., x - k]``), the aligning parameters
are ``s = 1, tx = +2 k / W``; ``s > 1`` zooms out (content shrinks). Positions
sampled outside the map read zeros (``padding_mode='zeros'``).
"""
import functools
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, repeat
from mmengine.model import BaseModule
from torch import Tensor

from unspat_mm.registry import MODELS


def make_sampling_grid(params: Tensor, size: Tuple[int, int]) -> Tensor:
    """The ``F.affine_grid`` grid of ``A = [[s, 0, tx], [0, s, ty]]``.

    Built from the exact cell centres ``(2 i + 1) / W - 1`` rather than by
    ``F.affine_grid`` itself, whose ``linspace`` rounding makes the identity
    warp differ slightly from the input; with these centres the identity is
    bit-exact for power-of-two sizes (8x8 in the paper).

    Args:
        params (Tensor): (N, 3) warp parameters (s, tx, ty), translations normalised.
        size (Tuple[int, int]): (H, W) of the output map.

    Returns:
        Tensor: (N, H, W, 2) sampling grid (x, y) for ``F.grid_sample``.
    """
    h, w = size
    xs = (2 * torch.arange(w, device=params.device, dtype=params.dtype) + 1) / w - 1
    ys = (2 * torch.arange(h, device=params.device, dtype=params.dtype) + 1) / h - 1
    base = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), dim=-1)  # (H, W, 2)
    scale = rearrange(params[:, 0], 'n -> n 1 1 1')
    shift = rearrange(params[:, 1:], 'n xy -> n 1 1 xy')
    return scale * base + shift


def warp_features(feats: Tensor, params: Tensor, padding_mode: str = 'zeros') -> Tensor:
    """Warp (N, C, H, W) feature maps by (N, 3) parameters (s, tx, ty).

    Bilinear, ``align_corners=False``; see the module docstring for the sign
    of the translation. Differentiable in ``feats`` and ``params``.
    """
    if params.shape != (feats.shape[0], 3):
        raise ValueError(f'params must be ({feats.shape[0]}, 3) = (s, tx, ty) per map, '
                         f'got {tuple(params.shape)}')
    grid = make_sampling_grid(params.to(feats.dtype), feats.shape[-2:])
    return F.grid_sample(feats, grid, mode='bilinear', padding_mode=padding_mode,
                         align_corners=False)


# padded maps up to this many positions (20 x 20) take the correlation GEMM
GEMM_MAX_PADDED_POSITIONS = 400


@functools.lru_cache(maxsize=16)
def _offset_index(h: int, w: int, k: int, device: torch.device) -> Tensor:
    """(1, H W, (2k+1)^2) index into a (H+2k)(W+2k) padded map: for each position
    (y, x) the padded positions (y + dy, x + dx), dy, dx in 0..2k, row-major; cached
    per device (no host-to-device copy per call)."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    offsets = torch.arange(2 * k + 1)
    rows = rearrange(ys, 'h w -> (h w) 1 1') + rearrange(offsets, 'dy -> 1 dy 1')
    cols = rearrange(xs, 'h w -> (h w) 1 1') + rearrange(offsets, 'dx -> 1 1 dx')
    index = rearrange(rows * (w + 2 * k) + cols, 'hw dy dx -> 1 hw (dy dx)')
    return index.to(device)


@MODELS.register_module()
class SpatialAlignment(BaseModule):
    """SAM: align each adjacent frame of a clip to its middle frame.

    ``g(x_cur, x_adj)``: cosine similarity (dot product of channel-normalised
    features) between every current position and the adjacent positions within
    ``max_displacement`` cells (a local correlation volume: a global per-position
    dot product would not tell the direction of motion), flattened, then
    FC -> ReLU -> FC to ``(log s, tx, ty)``. The last FC is zero-initialised so
    SAM starts as the identity warp (s = 1, tx = ty = 0).

    Args:
        in_channels (int): C of the features.
        feat_size (Sequence[int]): (H, W) of the features (the FC input size depends
            on it). Defaults to (8, 8).
        max_displacement (int): correlation radius k in cells ((2k+1)^2 offsets).
            Defaults to 2.
        hidden_channels (int): width of the hidden FC layer. Defaults to 256.
        padding_mode (str): ``F.grid_sample`` padding for positions warped from
            outside the map ('zeros', 'border' or 'reflection'). Defaults to 'zeros'.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    def __init__(self, in_channels: int, feat_size: Sequence[int] = (8, 8),
                 max_displacement: int = 2, hidden_channels: int = 256,
                 padding_mode: str = 'zeros', init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if max_displacement < 0:
            raise ValueError(f'max_displacement must be >= 0, got {max_displacement}')
        self.in_channels = in_channels
        self.feat_size = tuple(feat_size)
        self.max_displacement = max_displacement
        self.padding_mode = padding_mode
        num_offsets = (2 * max_displacement + 1)**2
        self.fc1 = nn.Linear(num_offsets * self.feat_size[0] * self.feat_size[1],
                             hidden_channels)
        self.fc2 = nn.Linear(hidden_channels, 3)
        # Identity at initialisation: log s = 0, tx = ty = 0.
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def correlation(self, current: Tensor, adjacent: Tensor) -> Tensor:
        """Local correlation volume.

        Args:
            current, adjacent (Tensor): (N, C, H, W) feature maps.

        Returns:
            Tensor: (N, D, H, W) cosine similarities, ``D = (2k+1)^2`` offsets
            (dy, dx) in row-major order; offsets outside the map give 0.
        """
        k = self.max_displacement
        h, w = current.shape[-2:]
        cur = F.normalize(current, dim=1)
        adj = F.pad(F.normalize(adjacent, dim=1), (k, k, k, k))
        if (h + 2 * k) * (w + 2 * k) <= GEMM_MAX_PADDED_POSITIONS:
            # One GEMM of every position against every padded position, then the
            # (2k+1)^2 offsets picked out: for the paper's 8x8 maps 5x faster on the CPU
            # than the strided products below (their temporaries dominate), and one
            # exportable MatMul + GatherElements. Its cost grows as (H W)^2, hence the bound.
            gram = torch.bmm(rearrange(cur, 'n c h w -> n (h w) c'),
                             rearrange(adj, 'n c h w -> n c (h w)'))
            index = _offset_index(h, w, k, gram.device)
            corr = gram.gather(2, index.expand(gram.shape[0], -1, -1))
            return rearrange(corr, 'n (h w) d -> n d h w', h=h)
        # one product per offset over views of the padded map (an unfold would copy a
        # (2k+1)^2-times larger tensor)
        return torch.stack([(cur * adj[:, :, dy:dy + h, dx:dx + w]).sum(dim=1)
                            for dy in range(2 * k + 1) for dx in range(2 * k + 1)], dim=1)

    def predict_params(self, current: Tensor, adjacent: Tensor) -> Tensor:
        """(N, C, H, W) x 2 -> (N, 3) parameters (s, tx, ty) aligning
        ``adjacent`` to ``current`` (s > 0 through a log-scale output)."""
        if tuple(current.shape[-2:]) != self.feat_size:
            raise ValueError(f'SpatialAlignment was built for {self.feat_size} feature maps '
                             f'but got {tuple(current.shape[-2:])}; set feat_size to the '
                             'backbone output size (input size / stride)')
        corr = rearrange(self.correlation(current, adjacent), 'n d h w -> n (d h w)')
        raw = self.fc2(F.relu(self.fc1(corr)))
        return torch.cat([raw[:, :1].exp(), raw[:, 1:]], dim=1)

    def forward(self, feats: Tensor, mid_index: Optional[int] = None
                ) -> Tuple[Tensor, Tensor]:
        """Align every frame of a clip to its middle frame.

        Args:
            feats (Tensor): (B, T, C, H, W) per-frame features.
            mid_index (int, optional): the current frame. Defaults to None
                (``T // 2``).

        Returns:
            tuple: aligned features (B, T, C, H, W) (the middle frame passes
            through untouched) and parameters (B, T, 3) as (s, tx, ty), the
            middle frame's being exactly (1, 0, 0).
        """
        b, t = feats.shape[:2]
        mid = t // 2 if mid_index is None else mid_index
        identity = feats.new_tensor([1., 0., 0.])
        if t == 1:
            return feats, repeat(identity, 'p -> b 1 p', b=b)
        others = [i for i in range(t) if i != mid]
        adjacent = rearrange(feats[:, others], 'b t c h w -> (b t) c h w')
        current = repeat(feats[:, mid], 'b c h w -> (b t) c h w', t=len(others))
        params = self.predict_params(current, adjacent)
        warped = warp_features(adjacent, params, self.padding_mode)
        warped = rearrange(warped, '(b t) c h w -> b t c h w', b=b)
        params = rearrange(params, '(b t) p -> b t p', b=b)
        aligned = torch.cat([warped[:, :mid], feats[:, mid:mid + 1], warped[:, mid:]], dim=1)
        params = torch.cat(
            [params[:, :mid], repeat(identity, 'p -> b 1 p', b=b), params[:, mid:]], dim=1)
        return aligned, params
