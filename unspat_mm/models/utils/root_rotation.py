"""Root (pelvis) orientation of the twist-swing IK: a weighted orthogonal Procrustes fit.

The pelvis has three children (both hips and spine1, ``ROOT_CHILDREN``); together with the
pelvis they are four points that the root rotation carries rigidly from the rest skeleton:
``J_j = J_0 + R_0 (rest_j - rest_0)``. The root is the rotation that best maps the four rest
points onto the four keypoints in the weighted least-squares sense (Kabsch / Wahba):

    R = argmin_{R in SO(3)} sum_j w_j |(y_j - y_bar) - R (x_j - x_bar)|^2,

with ``x`` the rest points, ``y`` the keypoints and ``x_bar``, ``y_bar`` their weighted
centroids. Fitting the centroid instead of pinning the fit to the pelvis keypoint (HybrIK's
SVD aligns the three bone vectors ``child - pelvis``) matters under noise: an error of the
pelvis keypoint moves all three bones alike, and the centroid fit averages it with the
others. With equal weights and isotropic Gaussian keypoint noise this is the maximum
likelihood root; ``w_j = 1 / sigma_j^2`` is the maximum likelihood weighting for per-joint
noise levels ``sigma_j``. Under keypoint noise it is more accurate than HybrIK's bone-vector
SVD and than the orthonormal hip-line / spine-bone frame this IK used before, at every noise
level (``python tools/analysis/benchmark_ik.py --sections noise`` prints the sweep).

Differentiation: the forward pass takes the SVD ``H = U S V^T`` of the weighted covariance
``H = sum_j w_j (y_j - y_bar)(x_j - x_bar)^T`` without autograd and returns
``R = U diag(1, 1, d) V^T`` with ``d = det(U V^T)`` (reflection fix). The SVD's own backward is
not used: it divides by ``s_i - s_j`` and is NaN/inf at repeated or zero singular values,
which are ordinary here (e.g. two singular values are zero for collinear points). Instead the
gradient follows from the optimality condition ``R^T H`` symmetric (implicit function
theorem): a change ``dH`` turns ``R`` into ``R (I + [omega]_x)`` with
``(tr(P) I - P) omega = vee(R^T dH - dH^T R)``, ``P = R^T H``. The matrix ``tr(P) I - P`` has
eigenvectors ``V`` and eigenvalues ``s_2 + d s_3, s_1 + d s_3, s_1 + s_2``, which vanish only
where the rotation is genuinely undetermined (collinear or coincident points, zero
keypoints). Eigenvalues below ``1e-4 (s_1 + s_2 + s_3) + eps * rms(x)`` are raised to that
floor, so the gradient is exact wherever the fit is well posed and bounded (finite)
elsewhere (about 5e5 rad per metre for all-zero keypoints on a human pelvis). The SVD runs
in float64 whatever the input dtype: it is 3 x 3, and float32 round trips then stay at
float32 rounding. The undetermined part of the forward value (e.g. the spin about the line of
collinear points) is whatever the SVD returns, always a proper rotation; an all-zero ``H``
gives the identity.

ONNX export: ONNX has no SVD (nor eigen-decomposition), so while ``torch.onnx.export`` traces
(``torch.onnx.is_in_onnx_export()``) the same fit is taken by Horn's quaternion method
instead, :func:`quaternion_procrustes_rotation`, built from MatMul and elementwise ops only.
The optimal rotation's unit quaternion is the eigenvector of the largest eigenvalue of a
symmetric 4 x 4 matrix ``N`` linear in ``H``; ``N``'s eigenvalues are
``+-s_1 +- s_2 +- s_3`` (an even number of minus signs, ``s_3`` signed by ``d``), so
``|lambda| <= s_1 + s_2 + s_3 <= sum_ij |H_ij| = c`` and ``N + c I`` is positive
semidefinite with the same eigenvectors. Squaring it ``QUATERNION_SQUARINGS`` times (the
power ``2^30``, renormalised to unit trace after each squaring so nothing overflows) leaves
the projector onto the top eigenvector, whose largest column is the quaternion. The gap
ratio ``(lambda_1 - lambda_2) / 2c >= (s_2 + d s_3) / (3 (s_1 + s_2 + s_3))`` only has to
exceed about ``4e-8`` for that power to converge to float64 rounding, whereas the gradient
above already treats ``s_2 + d s_3 < 1e-4 (s_1 + s_2 + s_3)`` as undetermined. Where the
top eigenvalue is repeated (the undetermined cases) the result is still a unit quaternion
of the top eigenspace, hence an optimal proper rotation, and an all-zero ``H`` gives the
identity as in the eager fit. It runs in float64 like the SVD,
because in float32 the eigenvector's error, ``eps ||N|| / gap``, reaches 5e-5 rad on
ordinary noisy pelvis fits. Eager training and inference keep the SVD fit and its gradient;
the export fit has no custom gradient (exported graphs are for inference).
"""
from typing import Optional, Tuple

import torch
from einops import einsum, rearrange
from torch import Tensor

from unspat_mm.structures.skeleton import NUM_HYBRIK_JOINTS, ROOT_CHILDREN

from .rotations import skew

__all__ = ['ROOT_POINTS', 'procrustes_rotation', 'quaternion_procrustes_rotation',
           'root_point_weights', 'root_rotation']

# The pelvis and its children: the four points carried rigidly by the root rotation.
ROOT_POINTS = (0, ) + tuple(ROOT_CHILDREN)
EPS = 1e-6  # metres: point sets with a spread below this count as a single point
_REL_FLOOR = 1e-4  # relative floor of the implicit-gradient eigenvalues
# squarings of the export fit's shifted Horn matrix: the power 2^30 (see the module docstring)
QUATERNION_SQUARINGS = 30


def _vee(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 3): ``(m21, m02, m10)``, the axial vector of a skew matrix."""
    return torch.stack([m[..., 2, 1], m[..., 0, 2], m[..., 1, 0]], dim=-1)


def _centred_covariance(source: Tensor, target: Tensor,
                        weights: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """Checked inputs -> centred ``x`` (B, N, 3), ``weights`` (B, N) and the weighted
    covariance ``H = sum_n w_n (y_n - y_bar)(x_n - x_bar)^T`` (B, 3, 3), metres^2."""
    if source.dim() != 3 or source.shape[-1] != 3 or source.shape != target.shape:
        raise ValueError(f'source and target must both be (B, N, 3), got '
                         f'{tuple(source.shape)} and {tuple(target.shape)}')
    if weights is None:
        weights = source.new_full(source.shape[:2], 1. / source.shape[1])
    x = source - einsum(weights, source, 'b n, b n c -> b c')[:, None]
    y = target - einsum(weights, target, 'b n, b n c -> b c')[:, None]
    return x, weights, y.transpose(1, 2) @ (weights[..., None] * x)


def _horn_matrix(cov: Tensor) -> Tensor:
    """(B, 3, 3) ``H`` -> (B, 4, 4) Horn's symmetric ``N``, whose top eigenvector is the
    quaternion ``(w, x, y, z)`` of the rotation maximising ``tr(R^T H)``."""
    (hxx, hxy, hxz), (hyx, hyy, hyz), (hzx, hzy, hzz) = [row.unbind(-1)
                                                         for row in cov.unbind(-2)]
    rows = [[hxx + hyy + hzz, hzy - hyz, hxz - hzx, hyx - hxy],
            [hzy - hyz, hxx - hyy - hzz, hyx + hxy, hxz + hzx],
            [hxz - hzx, hyx + hxy, hyy - hxx - hzz, hzy + hyz],
            [hyx - hxy, hxz + hzx, hzy + hyz, hzz - hxx - hyy]]
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def _quaternion_to_matrix(quat: Tensor) -> Tensor:
    """(B, 4) unit quaternions ``(w, x, y, z)`` -> (B, 3, 3) rotation matrices."""
    w, x, y, z = quat.unbind(-1)
    flat = torch.stack([
        w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], dim=-1)
    return rearrange(flat, 'b (i j) -> b i j', i=3, j=3)


def quaternion_procrustes_rotation(source: Tensor, target: Tensor,
                                   weights: Optional[Tensor] = None,
                                   squarings: int = QUATERNION_SQUARINGS) -> Tensor:
    """:func:`procrustes_rotation` by Horn's quaternion method, for ONNX export.

    Only MatMul, elementwise, reduction, ArgMax and Gather ops, so the TorchScript ONNX
    exporter can trace it (ONNX has no SVD); :func:`procrustes_rotation` switches to it
    while exporting. Where the fit is well posed it equals the SVD fit to rounding; where
    it is not (collinear, coincident or all-zero points) it returns some optimal proper
    rotation, possibly another one than the SVD's; an all-zero covariance gives the
    identity. See the module docstring for the convergence argument.

    Args:
        source (Tensor): (B, N, 3) points ``x`` (e.g. rest joints), metres.
        target (Tensor): (B, N, 3) points ``y`` (e.g. keypoints), metres.
        weights (Tensor, optional): (B, N) nonnegative weights that sum to 1 per sample.
            Defaults to ``None``: equal weights.
        squarings (int): squarings of the shifted Horn matrix (power ``2^squarings``).
            Defaults to ``QUATERNION_SQUARINGS`` = 30.

    Returns:
        Tensor: (B, 3, 3) proper rotations ``R`` in the dtype of ``source``.
    """
    _, _, cov = _centred_covariance(source, target, weights)
    # float64 like the eager SVD: in float32 the eigenvector's error eps ||N|| / gap
    # reaches 5e-5 rad on ordinary noisy fits
    cov64 = cov.double()
    shift = cov64.abs().sum(dim=(-2, -1)).clamp(min=1e-300)  # >= s_1 + s_2 + s_3
    eye = torch.eye(4, dtype=cov64.dtype, device=cov64.device)
    # (N + c I) / 4c: positive semidefinite, unit trace (N is traceless)
    power = (_horn_matrix(cov64) / shift[:, None, None] + eye) / 4
    for _ in range(squarings):
        power = power @ power
        # trace as a masked sum: diagonal() exports as an If per call
        power = power / (power * eye).sum(dim=(-2, -1), keepdim=True)
    # ~ q q^T: its largest column is q_j q with q_j^2 >= 1/4 (ties: the first, so that
    # all-zero H, where power = I / 4, gives q = (1, 0, 0, 0), the identity)
    best = (power * power).sum(-2).argmax(-1)
    quat = torch.gather(power, -1, best[:, None, None].expand(-1, 4, 1))[..., 0]
    quat = quat / (quat * quat).sum(-1, keepdim=True).sqrt()
    return _quaternion_to_matrix(quat).to(cov)


def procrustes_rotation(source: Tensor, target: Tensor, weights: Optional[Tensor] = None,
                        eps: float = EPS) -> Tensor:
    """Rotation that best maps centred ``source`` points onto centred ``target`` points.

    Solves ``argmin_R sum_i w_i |(y_i - y_bar) - R (x_i - x_bar)|^2`` over proper rotations
    (weighted Kabsch, reflection fixed); see the module docstring for the gradient. While
    exporting to ONNX it is :func:`quaternion_procrustes_rotation` (same value where the fit
    is well posed).

    Args:
        source (Tensor): (B, N, 3) points ``x`` (e.g. rest joints), metres.
        target (Tensor): (B, N, 3) points ``y`` (e.g. keypoints), metres.
        weights (Tensor, optional): (B, N) nonnegative weights that sum to 1 per sample
            (see :func:`root_point_weights`). Defaults to ``None``: equal weights.
        eps (float): spread of ``source`` (metres) below which it counts as a single point,
            which sets the absolute floor of the gradient's eigenvalues.
            Defaults to ``EPS`` = 1e-6.

    Returns:
        Tensor: (B, 3, 3) rotation matrices ``R`` with finite values and finite gradients
        for any finite input.
    """
    if torch.onnx.is_in_onnx_export():  # ONNX has no SVD; same value, no custom gradient
        return quaternion_procrustes_rotation(source, target, weights)
    x, weights, cov = _centred_covariance(source, target, weights)
    eye = torch.eye(3, dtype=cov.dtype, device=cov.device)
    with torch.no_grad():
        # float64 for a 3 x 3 SVD costs little and keeps float32 round trips at rounding
        # level; on the CPU, because MPS has no float64 and batched 3 x 3 SVDs are slow on GPUs
        u, s, vh = torch.linalg.svd(cov.detach().cpu().double())
        d = torch.where(torch.linalg.det(u @ vh) < 0, -1., 1.).to(s)
        signs = torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1)
        rot0 = u @ (signs[..., None] * vh)
        rot0 = torch.where((s.sum(-1) > 0)[:, None, None], rot0, torch.eye(3).double())
        signed = s * signs
        eigvals = torch.stack([signed[:, 1] + signed[:, 2], signed[:, 0] + signed[:, 2],
                               signed[:, 0] + signed[:, 1]], dim=-1)
        rms = (weights * (x * x).sum(-1)).sum(-1).clamp(min=0).sqrt().cpu().double()
        floor = _REL_FLOOR * s.sum(-1) + eps * rms + 1e-12
        eigvals = torch.maximum(eigvals, floor[:, None])
        k_inv = (vh.transpose(-1, -2) @ (vh / eigvals[..., None])).to(cov)  # V diag(1/l) V^T
        rot0 = rot0.to(cov)
    # Implicit gradient: the optimality residual vee(R^T H - H^T R) is zero at rot0; its
    # value is removed so that only its derivative, mapped through K^-1, reaches omega.
    a = rot0.transpose(-1, -2) @ cov
    residual = _vee(a - a.transpose(-1, -2))
    omega = (k_inv @ (residual - residual.detach())[..., None])[..., 0]
    return rot0 @ (eye + skew(omega))


def root_point_weights(weights: Optional[Tensor], batch: int, like: Tensor) -> Tensor:
    """Normalised weights of :data:`ROOT_POINTS` (pelvis, left hip, right hip, spine1).

    Args:
        weights (Tensor, optional): (B, 29) per-keypoint weights, of which the four root
            points are used, or (B, 3) weights of ``ROOT_CHILDREN``, the pelvis then getting
            their mean. Negative entries count as 0; scale does not matter; a sample whose
            weights are all 0 gets equal weights. ``None`` means equal weights.
        batch (int): B.
        like (Tensor): a tensor whose dtype and device the result takes.

    Returns:
        Tensor: (B, 4) weights summing to 1 per sample.
    """
    if weights is None:
        return like.new_full((batch, len(ROOT_POINTS)), 1. / len(ROOT_POINTS))
    if weights.dim() != 2 or weights.shape[0] != batch or weights.shape[1] not in (
            NUM_HYBRIK_JOINTS, len(ROOT_CHILDREN)):
        raise ValueError(f'weights must have shape (B, {NUM_HYBRIK_JOINTS}) or (B, '
                         f'{len(ROOT_CHILDREN)}) with B = {batch}, got {tuple(weights.shape)}')
    weights = weights.to(like).clamp(min=0)
    if weights.shape[1] == NUM_HYBRIK_JOINTS:
        weights = weights[:, list(ROOT_POINTS)]
    else:
        weights = torch.cat([weights.mean(-1, keepdim=True), weights], dim=-1)
    total = weights.sum(-1, keepdim=True)
    ok = total > 0
    equal = torch.full_like(weights, 1. / len(ROOT_POINTS))
    return torch.where(ok, weights / torch.where(ok, total, torch.ones_like(total)), equal)


def root_rotation(keypoints29: Tensor, rest_joints29: Tensor,
                  weights: Optional[Tensor] = None) -> Tensor:
    """Global orientation of the pelvis from its keypoint and its children's.

    Args:
        keypoints29 (Tensor): (B, 29, 3) keypoints, metres; any translation.
        rest_joints29 (Tensor): (B, 29, 3) rest skeleton, metres.
        weights (Tensor, optional): (B, 29) or (B, 3) weights, e.g. ``1 / sigma^2``; see
            :func:`root_point_weights`. Defaults to ``None``: equal weights.

    Returns:
        Tensor: (B, 3, 3) root rotation ``R_0`` (SMPL's global orientation).
    """
    points = list(ROOT_POINTS)
    w = root_point_weights(weights, keypoints29.shape[0], keypoints29)
    return procrustes_rotation(rest_joints29[:, points], keypoints29[:, points], w)
