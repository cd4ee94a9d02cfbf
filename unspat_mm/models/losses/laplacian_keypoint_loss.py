"""Laplacian negative log-likelihood of keypoints with predicted confidence (UNSPAT eq. 7)."""
import math
from typing import Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor, nn

from unspat_mm.registry import MODELS

REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str, owner: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f'{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}.')
    return reduction


def expand_weight(weight: Optional[Tensor], shape: Tuple[int, int], ref: Tensor,
                  owner: str) -> Tensor:
    """Bring a validity / weight tensor to ``shape`` = (B, N).

    Accepts None (all ones), (B,), (B, 1), (B, N) or (B, N, 1). Entries <= 0
    mark masked samples / elements.
    """
    if weight is None:
        return ref.new_ones(shape)
    weight = weight.to(ref.dtype)
    if weight.dim() == 3 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    elif weight.dim() == 1:
        weight = weight[:, None]
    if weight.dim() != 2 or weight.shape[0] != shape[0] or weight.shape[1] not in (1, shape[1]):
        raise ValueError(f'{owner}: target_weight must be (B,), (B, 1), (B, {shape[1]}) or '
                         f'(B, {shape[1]}, 1) with B={shape[0]}, got {tuple(weight.shape)}.')
    return weight.expand(shape)


def masked_reduce(values: Tensor, weight: Tensor, reduction: str) -> Tensor:
    """Weighted reduction of (B, N) loss terms that ignores masked entries.

    Entries with weight <= 0 contribute exactly nothing, neither value nor
    gradient, even if their values are not finite. ``'mean'`` divides by the
    sum of the positive weights (0 when every entry is masked), ``'none'``
    returns the (B, N) weighted terms.

    In distributed training the ``'mean'`` divisor is the average over processes
    of their weight sums (as mmdet's ``reduce_mean`` of ``avg_factor``): with
    gradients averaged across processes, the result is the mean over the global
    batch, whatever the split of the valid entries among the processes.
    """
    valid = weight > 0
    weighted = torch.where(valid, values * weight, values.new_zeros(()))
    if reduction == 'none':
        return weighted
    if reduction == 'sum':
        return weighted.sum()
    total = torch.where(valid, weight, weight.new_zeros(())).sum().detach()
    if get_world_size() > 1:
        all_reduce(total, op='mean')
    return weighted.sum() / torch.where(total > 0, total, total.new_ones(()))


@MODELS.register_module()
class LaplacianKeypointLoss(nn.Module):
    """Negative log-likelihood of keypoint errors under a Laplace distribution.

    Each coordinate d of keypoint k is modelled as Laplace with standard
    deviation ``sigma_k`` (scale ``sigma_k / sqrt(2)``), the density written
    in UNSPAT's eq. 7, ``1 / (sqrt(2) sigma) * exp(-sqrt(2) |e| / sigma)``.
    The per-keypoint term is the coordinate-averaged negative log-likelihood

        L_k = log(sqrt(2) * sigma_k) + sqrt(2) * mean_d |p_kd - p^_kd| / sigma_k

    (averaging, not summing, over the D coordinates keeps the 3D and the 2D
    term of eq. 8, which share sigma, on the same scale, and gives sigma the
    meaning of the per-coordinate error's standard deviation). For a fixed
    error, L_k is smallest at ``sigma_k = sqrt(2) * mean_d |e_kd|``, where it
    equals ``log(2 * mean_d |e_kd|) + 1``. The loss can be negative.

    Args:
        loss_weight (float): lambda_pose of eq. 11 (paper: 1). Defaults to 1.0.
        reduction (str): ``'mean'`` (weighted mean over the unmasked (sample,
            keypoint) entries, eq. 7's 1/K sum averaged over the batch),
            ``'sum'`` or ``'none'`` ((B, K) weighted terms). Defaults to ``'mean'``.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, type(self).__name__)

    def forward(self,
                pred: Tensor,
                sigma: Tensor,
                target: Tensor,
                target_weight: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            pred (Tensor): (B, K, D) predicted keypoints, D = 3 (metres, or
                whatever unit the target uses) or D = 2 (image coordinates).
            sigma (Tensor): (B, K, 1) or (B, K) per-keypoint standard
                deviation, in the unit of ``pred``, > 0 on unmasked entries;
                the head makes it positive (e.g. sigmoid or softplus), the
                loss takes it as it is.
            target (Tensor): (B, K, D) ground truth; masked entries may hold
                anything, NaN included.
            target_weight (Tensor, optional): (B,), (B, 1), (B, K) or (B, K, 1)
                validity / weight; entries <= 0 are masked. Defaults to None.

        Returns:
            Tensor: scalar loss (or (B, K) for ``reduction='none'``).
        """
        name = type(self).__name__
        if pred.dim() != 3 or pred.shape != target.shape:
            raise ValueError(f'{name}: pred and target must both be (B, K, D), got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}.')
        batch, num_kpts, _ = pred.shape
        if sigma.dim() == 3 and sigma.shape[-1] == 1:
            sigma = sigma[..., 0]
        if tuple(sigma.shape) != (batch, num_kpts):
            raise ValueError(f'{name}: sigma must be (B, K, 1) or (B, K) = ({batch}, '
                             f'{num_kpts}), got {tuple(sigma.shape)}.')
        weight = expand_weight(target_weight, (batch, num_kpts), pred, name)
        valid = weight > 0

        # Masked entries get harmless stand-ins so that neither NaN targets
        # nor non-positive sigmas leak NaN into the value or the gradient.
        sigma = torch.where(valid, sigma, sigma.new_ones(()))
        if bool((sigma <= 0).any()):
            raise ValueError(f'{name}: sigma must be > 0 on unmasked keypoints, got a minimum '
                             f'of {sigma.min().item():.3g}; apply softplus/sigmoid in the head.')
        target = torch.where(valid[..., None], target, pred.detach())
        abs_err = (pred - target).abs().mean(dim=-1)
        terms = torch.log(math.sqrt(2.0) * sigma) + math.sqrt(2.0) * abs_err / sigma
        return self.loss_weight * masked_reduce(terms, weight, self.reduction)
