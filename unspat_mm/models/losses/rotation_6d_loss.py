"""Least-squares loss on a raw 6D rotation output (not in the paper; see ``IKMeshHead``)."""
from typing import Optional

import torch
from torch import Tensor

from unspat_mm.models.utils.rotations import matrix_to_rotation_6d
from unspat_mm.registry import MODELS
from .smpl_param_losses import _SMPLParamLoss, to_rotation_matrices


@MODELS.register_module()
class Rotation6DLoss(_SMPLParamLoss):
    """MSE between a raw (unnormalised) 6D output and the first two columns of the
    target rotation (Zhou et al., CVPR 2019; the layout of
    :func:`~unspat_mm.models.utils.rotation_6d_to_matrix`).

    Compared before Gram-Schmidt, the loss is a plain least-squares regression of
    the output layer: it stays convex in that layer and does not depend on the
    output's scale, where a loss on the orthonormalised matrix does.

    Args:
        loss_weight (float): weight of the term. Defaults to 1.0.
        reduction (str): ``'mean'`` over unmasked samples and the 6 entries,
            ``'sum'``, or ``'none'`` ((B, 6) weighted squared errors).
            Defaults to ``'mean'``.
    """

    def forward(self, pred: Tensor, target: Tensor,
                target_weight: Optional[Tensor] = None) -> Tensor:
        """Args:
            pred (Tensor): (B, 6) raw 6D output: first column, then second column.
            target (Tensor): (B, 3) axis-angle (radians) or (B, 3, 3) rotation
                matrices.
            target_weight (Tensor, optional): (B,) or (B, 1) validity / weight per
                sample; entries <= 0 are masked. Defaults to None.
        """
        name = type(self).__name__
        if pred.dim() != 2 or pred.shape[1] != 6:
            raise ValueError(f'{name}: pred must be a raw 6D rotation (B, 6), got '
                             f'{tuple(pred.shape)}.')
        target = target[:, None] if target.dim() == 3 else target
        mats = to_rotation_matrices(target, name)
        if mats.shape[:2] != (pred.shape[0], 1):
            raise ValueError(f'{name}: target must be one rotation per sample, (B, 3) '
                             f'axis-angle or (B, 3, 3) matrices, got {tuple(target.shape)}.')
        target6d = matrix_to_rotation_6d(mats[:, 0])
        weight = self._weight(target_weight, pred, 6)
        target6d = torch.where(weight > 0, target6d, pred.detach())
        return self._reduce((pred - target6d)**2, weight)
