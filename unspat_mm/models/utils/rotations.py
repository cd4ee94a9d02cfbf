"""Rotation conversions with finite gradients everywhere.

All functions take any leading batch shape ``(...)``. Angles are in radians.
Matrices act on column vectors (``x' = R @ x``), as in SMPL.

Where a quantity is undefined (the axis of a zero rotation, the unit vector of a
zero vector) the functions return a fixed, documented value with a zero gradient
instead of NaN, using the "double ``where``" pattern: the branch that is not taken
is fed a harmless input so that its backward pass cannot produce ``inf * 0``.
"""
import torch
from einops import pack, rearrange, unpack
from smplx.lbs import batch_rodrigues
from torch import Tensor

__all__ = [
    'axis_angle_to_matrix', 'matrix_to_axis_angle', 'geodesic_distance', 'rotation_about_axis',
    'rotation_6d_to_matrix', 'matrix_to_rotation_6d', 'skew', 'safe_norm', 'safe_normalize',
    'any_perpendicular'
]


def _check_last(x: Tensor, shape: tuple, name: str) -> None:
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f'{name} must have shape (..., {", ".join(map(str, shape))}), '
                         f'got {tuple(x.shape)}')


def safe_norm(v: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    """Euclidean norm whose gradient at the zero vector is 0 (not NaN)."""
    sq = (v * v).sum(dim=dim, keepdim=keepdim)
    nonzero = sq > 0
    return torch.where(nonzero, torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq))),
                       torch.zeros_like(sq))


def safe_normalize(v: Tensor, fallback: Tensor, eps: float = 1e-6) -> Tensor:
    """``v / |v|`` where ``|v| > eps``, else ``fallback`` (broadcast to ``v``).

    Args:
        v (Tensor): (..., D) vectors.
        fallback (Tensor): (..., D) or (D,) unit vectors used for short ``v``; no gradient
            flows into ``v`` from that branch.
        eps (float): length below which ``v`` counts as zero (same unit as ``v``).
            The gradient of the result is bounded by ``1 / eps``. Defaults to 1e-6.
    """
    norm = safe_norm(v, keepdim=True)
    ok = norm > eps
    unit = v / torch.where(ok, norm, torch.ones_like(norm))
    return torch.where(ok, unit, fallback.to(v).expand_as(v))


def skew(v: Tensor) -> Tensor:
    """(..., 3) vectors -> (..., 3, 3) matrices ``[v]_x`` with ``[v]_x u = v x u``."""
    _check_last(v, (3, ), 'v')
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    flat = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    return rearrange(flat, '... (i j) -> ... i j', i=3, j=3)


def any_perpendicular(v: Tensor) -> Tensor:
    """A unit vector perpendicular to each unit vector in ``v`` (..., 3).

    It is ``v x e`` normalised, where ``e`` is the coordinate axis least aligned with
    ``v``; then ``|v x e| >= sqrt(2/3)`` so the division is always well conditioned.
    The choice of ``e`` is piecewise constant, so the result jumps where the least
    aligned axis changes (only relevant for exactly degenerate inputs).
    """
    _check_last(v, (3, ), 'v')
    axis = torch.nn.functional.one_hot(v.abs().argmin(dim=-1), 3).to(v)
    return safe_normalize(torch.linalg.cross(v, axis), fallback=axis)


def rotation_about_axis(axis: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rodrigues' formula ``I + s [n]_x + (1 - c) [n]_x^2`` (paper eq. 5 and 6).

    Args:
        axis (Tensor): (..., 3) rotation axes, any length; normalised here. A zero axis
            (length <= 1e-12) gives the identity.
        cos (Tensor): (...) cosine of the angle.
        sin (Tensor): (...) sine of the angle. ``cos**2 + sin**2`` should be 1; the
            pair is not renormalised here (callers that predict it normalise it).

    Returns:
        Tensor: (..., 3, 3) rotation matrices.
    """
    _check_last(axis, (3, ), 'axis')
    if cos.shape != axis.shape[:-1] or sin.shape != axis.shape[:-1]:
        raise ValueError(f'cos and sin must have the batch shape of axis {tuple(axis.shape[:-1])},'
                         f' got {tuple(cos.shape)} and {tuple(sin.shape)}')
    n = safe_normalize(axis, fallback=torch.zeros(3), eps=1e-12)
    k = skew(n)
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return eye + sin[..., None, None] * k + (1 - cos)[..., None, None] * (k @ k)


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """(..., 3) axis-angle vectors (radians) -> (..., 3, 3) rotation matrices.

    Uses :func:`smplx.lbs.batch_rodrigues`, i.e. exactly SMPL's own conversion.
    """
    _check_last(aa, (3, ), 'aa')
    flat, packed_shape = pack([aa], '* c')
    rot = batch_rodrigues(flat)
    return unpack(rot, packed_shape, '* i j')[0]


def rotation_6d_to_matrix(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on two 3-vectors (Zhou et al., CVPR 2019).

    The first three entries give the first column, the last three the direction of
    the second column after removing its component along the first; the third column
    is their cross product. The first two columns of a rotation matrix, concatenated,
    map back to that matrix. Inputs whose two vectors are parallel or zero get
    ``any_perpendicular`` / the x axis instead of NaN. (mmpose's ``rot6d_to_rotmat``
    calls ``torch.cross`` without ``dim``, which takes the batch axis when the batch
    size is 3, and returns a zero matrix for a zero input.)
    """
    _check_last(x, (6, ), 'x')
    first = safe_normalize(x[..., :3], x.new_tensor([1., 0., 0.]))
    second = x[..., 3:] - (first * x[..., 3:]).sum(-1, keepdim=True) * first
    second = safe_normalize(second, any_perpendicular(first))
    return torch.stack([first, second, torch.linalg.cross(first, second)], dim=-1)


def matrix_to_rotation_6d(rot: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, concatenated; the inverse of
    :func:`rotation_6d_to_matrix` on rotation matrices."""
    _check_last(rot, (3, 3), 'rot')
    return rearrange(rot[..., :2], '... r c -> ... (c r)')


def _matrix_to_quaternion_unnormalised(rot: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 4) quaternion ``(w, x, y, z)`` up to a positive scale.

    Shepperd's method: of the four algebraically equivalent formulas, each
    dividing by a different quaternion component, use the one whose divisor is
    largest (``>= 1/2`` for a rotation), so nothing divides by a small number.
    """
    m = rot
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4 q_i^2 for i = w, x, y, z
    four_sq = torch.stack([
        1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22
    ], dim=-1)
    s01, s02, s12 = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], \
        m[..., 1, 2] + m[..., 2, 1]
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], \
        m[..., 1, 0] - m[..., 0, 1]
    # Row i is 4 q_i * (w, x, y, z).
    candidates = torch.stack([
        torch.stack([four_sq[..., 0], d21, d02, d10], dim=-1),
        torch.stack([d21, four_sq[..., 1], s01, s02], dim=-1),
        torch.stack([d02, s01, four_sq[..., 2], s12], dim=-1),
        torch.stack([d10, s02, s12, four_sq[..., 3]], dim=-1),
    ], dim=-2)
    best = four_sq.argmax(dim=-1)
    index = best[..., None, None].expand(*best.shape, 1, 4)
    chosen = torch.gather(candidates, -2, index)[..., 0, :]
    # 4 q_i q / (2 sqrt(4 q_i^2)) = +-q: unit for exact rotations (4 q_i^2 >= 1 there);
    # for slightly non-orthogonal input only ratios are used downstream.
    divisor = 2 * torch.gather(four_sq, -1, best[..., None]).clamp(min=1e-12).sqrt()
    return chosen / divisor


def matrix_to_axis_angle(rot: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle vectors, angle in [0, pi].

    Goes through a quaternion (Shepperd's method), then ``angle = 2 atan2(|v|, w)``
    with ``w >= 0``; ``atan2`` is accurate at both ends, and near angle 0 the ratio
    ``angle / |v|`` is replaced by its limit ``2 / w`` so the gradient stays finite.
    At exactly pi the sign of the axis is arbitrary (both are the same rotation).
    """
    _check_last(rot, (3, 3), 'rot')
    quat = _matrix_to_quaternion_unnormalised(rot)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    w, vec = quat[..., 0], quat[..., 1:]
    vnorm = safe_norm(vec)
    small = vnorm < 1e-6
    # Each branch gets safe inputs where it is not taken (w can be 0 at angle pi).
    safe_vnorm = torch.where(small, torch.ones_like(vnorm), vnorm)
    safe_w = torch.where(small, w, torch.ones_like(w))
    # angle / |v|; series of 2 atan(x) / x about x = |v| / w = 0 in the small branch.
    ratio = torch.where(small, 2 / safe_w * (1 - (vnorm / safe_w)**2 / 3),
                        2 * torch.atan2(vnorm, w) / safe_vnorm)
    return vec * ratio[..., None]


def geodesic_distance(rot1: Tensor, rot2: Tensor) -> Tensor:
    """Angle (radians, in [0, pi]) of the relative rotation ``rot1^T rot2``.

    Computed as ``atan2(|sin|, cos)`` from the skew and trace parts, which is accurate
    near 0 and pi (unlike ``acos`` of the trace) and has finite gradients everywhere,
    including identical inputs (gradient 0 there).

    Args:
        rot1, rot2 (Tensor): (..., 3, 3) rotation matrices (broadcastable).

    Returns:
        Tensor: (...) angles.
    """
    _check_last(rot1, (3, 3), 'rot1')
    _check_last(rot2, (3, 3), 'rot2')
    rel = rot1.transpose(-1, -2) @ rot2
    sin_axis = torch.stack([
        rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0],
        rel[..., 1, 0] - rel[..., 0, 1]
    ], dim=-1) / 2
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.atan2(safe_norm(sin_axis), cos)
