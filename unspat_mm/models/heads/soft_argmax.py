"""Integral (soft-argmax) keypoint regression from 3D heatmaps."""
import torch
from einops import rearrange
from torch import Tensor

GRIDS = ('centres', 'hybrik')


def voxel_centres(size: int, like: Tensor) -> Tensor:
    """(size,) centres of ``size`` equal cells spanning [-0.5, 0.5]."""
    return (torch.arange(size, dtype=like.dtype, device=like.device) + 0.5) / size - 0.5


def soft_argmax_3d(logits: Tensor, grid: str = 'centres') -> Tensor:
    """Expected (x, y, z) of each keypoint under its softmax-normalised heatmap.

    Args:
        logits (Tensor): (B, K, D, H, W) heatmap logits; D indexes depth (z), H rows
            (y, downwards in the image) and W columns (x, to the right). The softmax
            runs over all D * H * W cells of a keypoint.
        grid (str): where cell i of n sits: ``'centres'`` at ``(i + 0.5) / n - 0.5``
            (a one-hot heatmap yields exactly its cell's centre); ``'hybrik'`` at
            HybrIK's ``i / n - 0.5``, computed in HybrIK's order (the softmax
            renormalised by its sum, then the expected index / n - 0.5: a float32
            sum over 64^3 cells is not exactly 1). Defaults to ``'centres'``.

    Returns:
        Tensor: (B, K, 3) coordinates (x, y, z) in units of the heatmap cube's side,
        in [-0.5, 0.5] (``'hybrik'``: [-0.5, 0.5 - 1/n]).
    """
    if grid not in GRIDS:
        raise ValueError(f'soft_argmax_3d: grid must be one of {GRIDS}, got {grid!r}.')
    b, k, d, h, w = logits.shape
    prob = rearrange(logits, 'b k d h w -> b k (d h w)').softmax(dim=-1)
    if grid == 'hybrik':
        prob = prob / prob.sum(dim=-1, keepdim=True)
    prob = rearrange(prob, 'b k (d h w) -> b k d h w', d=d, h=h, w=w)
    marginals = (prob.sum(dim=(2, 3)), prob.sum(dim=(2, 4)), prob.sum(dim=(3, 4)))  # x, y, z
    if grid == 'hybrik':
        coords = [(m * torch.arange(n, dtype=m.dtype, device=m.device)).sum(-1) / n - 0.5
                  for m, n in zip(marginals, (w, h, d))]
    else:
        coords = [(m * voxel_centres(n, logits)).sum(-1) for m, n in zip(marginals, (w, h, d))]
    return torch.stack(coords, dim=-1)
