"""Shape, pose and twist supervision of the SMPL parameters (UNSPAT eqs. 9 and 10)."""
from typing import Optional

import torch
from einops import rearrange
from smplx.lbs import batch_rodrigues
from torch import Tensor, nn

from unspat_mm.registry import MODELS
from .laplacian_keypoint_loss import check_reduction, expand_weight, masked_reduce


def _check_pair(pred: Tensor, target: Tensor, owner: str, layout: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f'{owner}: pred and target must have the same shape {layout}, got '
                         f'{tuple(pred.shape)} and {tuple(target.shape)}.')


def to_rotation_matrices(rot: Tensor, owner: str = 'to_rotation_matrices') -> Tensor:
    """Rotation matrices (B, J, 3, 3) from matrices or axis-angle.

    Args:
        rot (Tensor): (B, J, 3, 3) rotation matrices (returned as they are),
            or axis-angle as (B, J, 3) or (B, J * 3) (SMPL's θ), radians.
            Matrices must be 4-D: a 3-D (B, 3, 3) is read as 3 axis-angles.

    Returns:
        Tensor: (B, J, 3, 3).
    """
    if rot.dim() == 4 and rot.shape[-2:] == (3, 3):
        return rot
    if rot.dim() == 2 and rot.shape[-1] % 3 == 0:
        rot = rearrange(rot, 'b (j c) -> b j c', c=3)
    if rot.dim() != 3 or rot.shape[-1] != 3:
        raise ValueError(f'{owner}: expected rotation matrices (B, J, 3, 3) or axis-angle '
                         f'(B, J, 3) / (B, J*3), got {tuple(rot.shape)}.')
    mats = batch_rodrigues(rearrange(rot, 'b j c -> (b j) c'))
    return rearrange(mats, '(b j) r c -> b j r c', b=rot.shape[0])


class _SMPLParamLoss(nn.Module):

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.reduction = check_reduction(reduction, type(self).__name__)

    def _weight(self, target_weight: Optional[Tensor], pred: Tensor, num: int) -> Tensor:
        """(B, num) weights; entries <= 0 are masked."""
        return expand_weight(target_weight, (pred.shape[0], num), pred, type(self).__name__)

    def _reduce(self, values: Tensor, weight: Tensor) -> Tensor:
        return self.loss_weight * masked_reduce(values, weight, self.reduction)


@MODELS.register_module()
class BetaLoss(_SMPLParamLoss):
    """MSE of the SMPL shape coefficients β (eq. 9, the paper's MSE).

    Args:
        loss_weight (float): lambda_beta (paper: 1). Defaults to 1.0.
        reduction (str): ``'mean'`` over unmasked samples and coefficients,
            ``'sum'``, or ``'none'`` ((B, S) weighted squared errors).
            Defaults to ``'mean'``.
    """

    def forward(self, pred: Tensor, target: Tensor,
                target_weight: Optional[Tensor] = None) -> Tensor:
        """Args:
            pred (Tensor): (B, S) predicted β (S = 10 for SMPL).
            target (Tensor): (B, S) ground-truth β.
            target_weight (Tensor, optional): (B,) or (B, 1) validity /
                weight per sample (or (B, S)); entries <= 0 are masked.
                Defaults to None.
        """
        name = type(self).__name__
        _check_pair(pred, target, name, '(B, S)')
        if pred.dim() != 2:
            raise ValueError(f'{name}: β must be (B, S), got {tuple(pred.shape)}.')
        weight = self._weight(target_weight, pred, pred.shape[1])
        # masked targets may be NaN: keep them out of the backward pass
        target = torch.where(weight > 0, target, pred.detach())
        return self._reduce((pred - target)**2, weight)


@MODELS.register_module()
class ThetaLoss(_SMPLParamLoss):
    """MSE of the SMPL pose θ (eq. 9), compared as rotation matrices.

    Axis-angle is ambiguous (θ and θ - 2π θ/|θ| are the same rotation, and
    so are θ and -θ at |θ| = π), so the axis-angle the IK produces can differ
    from the ground truth's for the same pose; rotation matrices are unique
    and smooth, and their squared Frobenius distance is 4 (1 - cos α) for a
    relative rotation by α. Axis-angle inputs are converted with smplx's
    ``batch_rodrigues``.

    Args:
        loss_weight (float): lambda_theta (paper: 1). Defaults to 1.0.
        reduction (str): ``'mean'`` over unmasked samples, joints and the 9
            matrix entries, ``'sum'`` (of the per-joint means), or ``'none'``
            ((B, J) weighted per-joint mean squared errors). Defaults to ``'mean'``.
    """

    def forward(self, pred: Tensor, target: Tensor,
                target_weight: Optional[Tensor] = None) -> Tensor:
        """Args:
            pred (Tensor): (B, J, 3, 3) rotation matrices of the J local
                rotations (J = 24 with the root, 23 without), or axis-angle
                (B, J, 3) / (B, J * 3) in radians.
            target (Tensor): ground truth in either form (e.g. SMPL θ (B, 72)).
            target_weight (Tensor, optional): (B,), (B, 1) per-sample or
                (B, J) per-joint validity / weight; entries <= 0 are masked.
                Defaults to None.
        """
        name = type(self).__name__
        pred_mats = to_rotation_matrices(pred, name)
        target_mats = to_rotation_matrices(target, name)
        _check_pair(pred_mats, target_mats, name, '(as (B, J, 3, 3) matrices)')
        weight = self._weight(target_weight, pred_mats, pred_mats.shape[1])
        target_mats = torch.where((weight > 0)[..., None, None], target_mats, pred_mats.detach())
        sq_err = ((pred_mats - target_mats)**2).mean(dim=(-2, -1))
        return self._reduce(sq_err, weight)


@MODELS.register_module()
class TwistLoss(_SMPLParamLoss):
    """Twist-angle loss of eq. 10 on (cos φ, sin φ) vectors.

    Per joint ``|| (c_k, s_k) - (cos φ^_k, sin φ^_k) ||_2`` (or its square with
    ``squared=True``), averaged over the K joints. The prediction is compared
    as given: normalise it in the head if unit vectors are wanted. The norm is
    taken so that its gradient is 0, not NaN, where the error is exactly 0.

    Args:
        loss_weight (float): lambda_tw (paper: 1). Defaults to 1.0.
        reduction (str): ``'mean'`` over unmasked samples and joints,
            ``'sum'``, or ``'none'`` ((B, K) weighted per-joint errors).
            Defaults to ``'mean'``.
        squared (bool): use the squared distance (HybrIK's MSE) instead.
            Defaults to False.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 squared: bool = False) -> None:
        super().__init__(loss_weight, reduction)
        self.squared = squared

    def forward(self, pred: Tensor, target: Tensor,
                target_weight: Optional[Tensor] = None) -> Tensor:
        """Args:
            pred (Tensor): (B, K, 2) predicted (cos φ, sin φ), K = 23.
            target (Tensor): (B, K) ground-truth twist angles φ^ in radians,
                or (B, K, 2) their (cos, sin).
            target_weight (Tensor, optional): (B,), (B, 1), (B, K) or
                (B, K, 1) validity / weight; entries <= 0 are masked.
                Defaults to None.
        """
        name = type(self).__name__
        if pred.dim() != 3 or pred.shape[-1] != 2:
            raise ValueError(f'{name}: pred must be (B, K, 2) (cos, sin), '
                             f'got {tuple(pred.shape)}.')
        if target.dim() == 2:
            target = torch.stack([torch.cos(target), torch.sin(target)], dim=-1)
        _check_pair(pred, target, name, '(B, K, 2), or target (B, K) angles')
        weight = self._weight(target_weight, pred, pred.shape[1])
        target = torch.where((weight > 0)[..., None], target, pred.detach())
        sq_dist = ((pred - target)**2).sum(dim=-1)
        if self.squared:
            return self._reduce(sq_dist, weight)
        nonzero = sq_dist > 0
        dist = torch.where(nonzero, torch.sqrt(torch.where(nonzero, sq_dist, 1.0)), 0.0)
        return self._reduce(dist, weight)
