"""Integral (soft-argmax) keypoint regression from 3D heatmaps."""
import torch
from einops import rearrange
from torch import Tensor


def voxel_centres(size: int, like: Tensor) -> Tensor:
    """(size,) centres of ``size`` equal cells spanning [-0.5, 0.5]."""
    return (torch.arange(size, dtype=like.dtype, device=like.device) + 0.5) / size - 0.5


def soft_argmax_3d(logits: Tensor) -> Tensor:
    """Expected (x, y, z) of each keypoint under its softmax-normalised heatmap.

    Args:
        logits: (B, K, D, H, W) heatmap logits; D indexes depth (z), H rows (y,
            downwards in the image) and W columns (x, to the right).

    Returns:
        (B, K, 3) coordinates (x, y, z), each in [-0.5, 0.5]: the heatmap cube is
        the unit cube and a one-hot heatmap yields exactly its cell's centre.
    """
    b, k, d, h, w = logits.shape
    prob = rearrange(logits, 'b k d h w -> b k (d h w)').softmax(dim=-1)
    prob = rearrange(prob, 'b k (d h w) -> b k d h w', d=d, h=h, w=w)
    x = (prob.sum(dim=(2, 3)) * voxel_centres(w, logits)).sum(-1)
    y = (prob.sum(dim=(2, 4)) * voxel_centres(h, logits)).sum(-1)
    z = (prob.sum(dim=(3, 4)) * voxel_centres(d, logits)).sum(-1)
    return torch.stack([x, y, z], dim=-1)
