"""Forward kinematics and batched twist-and-swing inverse kinematics (paper §3.2, eqs. 3-6).

Conventions (SMPL's): ``local_rotmats[:, k]`` rotates the bones below joint ``k`` in the frame
of its parent; the global rotation is ``G_k = G_parent(k) @ R_k`` with ``G_0 = R_0``; a child
``c`` of ``k`` sits at ``J_c = J_k + G_k @ (rest_c - rest_k)``. Positions are in metres.

IK (HybrIK's scheme, written from the paper): each non-root joint ``k`` with swing child
``c = IK_CHILD[k]`` gets ``R_k = R_sw R_tw`` (eq. 3), where ``R_tw`` turns by the predicted
twist angle about the rest bone ``t = rest_c - rest_k`` (eq. 6) and ``R_sw`` is the smallest
rotation taking ``t`` onto the target bone ``p = kp_c - kp_k`` expressed in the frame of
``k``'s already solved parent (eqs. 4-5). Joints are solved level by level down the tree
(joints of one depth at once), batched over B. The five leaf points have no rotation of
their own: they only fix the swing of their parents (head, hands, feet).

Numerical choices. A direct transcription of the equations has three traps: eq. 5 divides
by ``|t x p|``, which is zero when a bone is parallel or antiparallel to its rest direction;
normalising a zero vector (a zero bone, coincident or all-zero keypoints, a zero twist pair)
gives NaN; and a root solved by SVD has no usable gradient at rank-deficient inputs (the
SVD's backward divides by differences of singular values). Here:

* Swing: ``R_sw = (2 h h^T - I)(2 t t^T - I)`` with ``h`` the unit bisector of the unit
  vectors ``t`` and ``p``: two half-turns whose axes are ``alpha/2`` apart compose to the
  rotation by ``alpha`` about ``t x p``, i.e. eq. 5, without dividing by ``|t x p|``. It is
  an exact rotation for any unit ``h``. When ``p`` is antiparallel to ``t`` (``|t + p| <=
  eps``) the swing is a half-turn about a fixed axis perpendicular to ``t`` (built from the
  coordinate axis least aligned with ``t``); the same rule is used by
  :func:`twist_angles_from_pose`, so the round trip holds there too.
* Zero vectors are never normalised: a target bone shorter than ``eps`` gives no swing, a
  zero rest bone uses the y axis, a twist ``(cos, sin)`` shorter than ``eps`` gives no twist.
  Gradients are then zero (not NaN), and bounded by ~``1 / eps`` near those cases.
* Root: the weighted least-squares (Procrustes) rotation of the pelvis and its three
  children, :func:`~unspat_mm.models.utils.root_rotation.root_rotation`. Its SVD runs
  without autograd; the gradient comes from the optimality condition with a floor on the
  eigenvalues it divides by, so it is exact where the fit is well posed and finite at
  collinear, coincident or all-zero points (details in that module). While exporting to ONNX,
  which has no SVD, the same fit is taken by Horn's quaternion method; the rest of the IK
  exports as it is.
"""
from typing import Optional, Tuple

import torch
from einops import rearrange
from smplx.lbs import batch_rigid_transform
from torch import Tensor

from unspat_mm.structures.skeleton import (HYBRIK_PARENTS, IK_CHILD, NUM_HYBRIK_JOINTS,
                                           NUM_SMPL_JOINTS)

from .root_rotation import root_rotation
from .rotations import (any_perpendicular, axis_angle_to_matrix, matrix_to_axis_angle,
                        rotation_about_axis, safe_normalize)

__all__ = ['forward_kinematics', 'twist_swing_ik', 'twist_angles_from_pose', 'swing_rotation']

EPS = 1e-6
_JOINTS = tuple(range(1, NUM_SMPL_JOINTS))  # joints with a twist, in twist-index order
_CHILDREN = tuple(IK_CHILD[k] for k in _JOINTS)


def _depth(k: int) -> int:
    return 0 if HYBRIK_PARENTS[k] < 0 else 1 + _depth(HYBRIK_PARENTS[k])


# Non-root SMPL joints grouped by tree depth; each group only needs its parents' rotations.
_LEVELS = tuple(
    tuple(k for k in _JOINTS if _depth(k) == d)
    for d in range(1, 1 + max(_depth(k) for k in _JOINTS)))


def _check(x: Tensor, shape: tuple, name: str, hint: str = '') -> None:
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(f'{name} must have shape (B, {", ".join(map(str, shape))}), got '
                         f'{tuple(x.shape)}{hint}')


def _rest_for(rest_joints29: Tensor, batch: int) -> Tensor:
    _check(rest_joints29, (NUM_HYBRIK_JOINTS, 3), 'rest_joints29',
           ' (use SMPLBodyModel.rest_joints29(betas))')
    if rest_joints29.shape[0] not in (1, batch):
        raise ValueError(f'rest_joints29 has batch {rest_joints29.shape[0]}, expected 1 or '
                         f'{batch}')
    return rest_joints29.expand(batch, -1, -1)


def swing_rotation(t_unit: Tensor, p: Tensor, eps: float = EPS) -> Tensor:
    """Smallest rotation taking the unit vectors ``t_unit`` onto the direction of ``p``.

    Args:
        t_unit (Tensor): (..., 3) unit vectors (rest bones).
        p (Tensor): (..., 3) target vectors, any length; shorter than ``eps`` -> identity.
        eps (float): degeneracy threshold for ``|p|`` and for ``|t + p_unit|``.
            Defaults to ``EPS`` = 1e-6.

    Returns:
        Tensor: (..., 3, 3) rotation matrices (eq. 4-5; see the module docstring).
    """
    p_unit = safe_normalize(p, fallback=t_unit, eps=eps)
    h = safe_normalize(t_unit + p_unit, fallback=any_perpendicular(t_unit), eps=eps)
    eye = torch.eye(3, dtype=t_unit.dtype, device=t_unit.device)
    half_h = 2 * h[..., :, None] * h[..., None, :] - eye
    half_t = 2 * t_unit[..., :, None] * t_unit[..., None, :] - eye
    return half_h @ half_t


def _rest_bone_units(rest: Tensor) -> Tensor:
    """(B, 29, 3) rest joints -> (B, 23, 3) unit rest bones of joints 1..23."""
    bones = rest[:, _CHILDREN] - rest[:, _JOINTS]
    return safe_normalize(bones, fallback=torch.tensor([0., 1., 0.]), eps=EPS)


def forward_kinematics(local_rotmats: Tensor, rest_joints29: Tensor) -> Tuple[Tensor, Tensor]:
    """Pose the rigid rest skeleton (HYBRIK_PARENTS), as SMPL does with zero translation.

    Args:
        local_rotmats (Tensor): (B, 24, 3, 3) local rotations (SMPL convention).
        rest_joints29 (Tensor): (B, 29, 3) or (1, 29, 3) rest skeleton, metres.

    Returns:
        tuple: ``joints29`` (B, 29, 3) posed joints in metres, NOT root-relative: the pelvis
        stays at ``rest_joints29[:, 0]`` like ``SMPL(transl=0)``'s joints (subtract
        ``joints29[:, :1]`` for root-relative ones); leaf points 24..28 are carried rigidly
        by their parents. ``global_rotmats`` (B, 24, 3, 3).
    """
    _check(local_rotmats, (NUM_SMPL_JOINTS, 3, 3), 'local_rotmats',
           ' (convert axis-angle with axis_angle_to_matrix)')
    rest = _rest_for(rest_joints29, local_rotmats.shape[0]).to(local_rotmats.dtype)
    parents = torch.tensor(HYBRIK_PARENTS[:NUM_SMPL_JOINTS], device=rest.device)
    joints24, rel_transforms = batch_rigid_transform(local_rotmats, rest[:, :NUM_SMPL_JOINTS],
                                                     parents, dtype=rest.dtype)
    global_rotmats = rel_transforms[..., :3, :3]
    leaf_parents = list(HYBRIK_PARENTS[NUM_SMPL_JOINTS:])
    offsets = rest[:, NUM_SMPL_JOINTS:] - rest[:, leaf_parents]
    leaves = joints24[:, leaf_parents] + (
        global_rotmats[:, leaf_parents] @ offsets[..., None])[..., 0]
    return torch.cat([joints24, leaves], dim=1), global_rotmats


def twist_swing_ik(keypoints29: Tensor,
                   twist: Tensor,
                   rest_joints29: Tensor,
                   weights: Optional[Tensor] = None,
                   root_rotmat: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Local rotations from 29 keypoints, twist angles and the rest skeleton.

    Args:
        keypoints29 (Tensor): (B, 29, 3) keypoints in metres (root-relative by convention;
            only bone vectors are used, so any translation gives the same result).
        twist (Tensor): (B, 23, 2) ``(cos phi, sin phi)`` of joints 1..23, normalised here;
            a pair shorter than 1e-6 (e.g. ``(0, 0)``) means no twist.
        rest_joints29 (Tensor): (B, 29, 3) or (1, 29, 3) rest skeleton (depends on betas).
        weights (Tensor, optional): per-keypoint weights of the root solve, e.g.
            ``1 / sigma**2``: (B, 29), of which the pelvis and its three children are used,
            or (B, 3) for the children (``ROOT_CHILDREN``; the pelvis gets their mean).
            Only relative values matter; negative entries count as 0. Defaults to ``None``:
            equal weights.
        root_rotmat (Tensor, optional): (B, 3, 3) global orientation to use instead of
            solving it from the keypoints (e.g. another solver's, for comparisons);
            ``weights`` is then unused. Defaults to ``None``.

    Returns:
        tuple: ``local_rotmats`` (B, 24, 3, 3) and ``theta`` (B, 72) SMPL axis-angle pose.
    """
    _check(keypoints29, (NUM_HYBRIK_JOINTS, 3), 'keypoints29')
    batch = keypoints29.shape[0]
    _check(twist, (len(_JOINTS), 2), 'twist', ' (cos, sin) for joints 1..23')
    if twist.shape[0] != batch:
        raise ValueError(f'twist has batch {twist.shape[0]}, keypoints29 has {batch}')
    rest = _rest_for(rest_joints29, batch).to(keypoints29.dtype)

    if root_rotmat is None:
        root = root_rotation(keypoints29, rest, weights)
    else:
        _check(root_rotmat, (3, 3), 'root_rotmat')
        if root_rotmat.shape[0] != batch:
            raise ValueError(f'root_rotmat has batch {root_rotmat.shape[0]}, keypoints29 has '
                             f'{batch}')
        root = root_rotmat.to(keypoints29.dtype)
    t_units = _rest_bone_units(rest)
    cos_sin = safe_normalize(twist, fallback=torch.tensor([1., 0.]), eps=EPS)
    twist_rots = rotation_about_axis(t_units, cos_sin[..., 0], cos_sin[..., 1])
    bones = keypoints29[:, _CHILDREN] - keypoints29[:, _JOINTS]

    local = {0: root}
    world = {0: root}
    for level in _LEVELS:
        idx = [k - 1 for k in level]
        parent_rot = torch.stack([world[HYBRIK_PARENTS[k]] for k in level], dim=1)
        # target bone in the parent's frame: G_parent^T p
        target = (parent_rot.transpose(-1, -2) @ bones[:, idx, :, None])[..., 0]
        rot = swing_rotation(t_units[:, idx], target) @ twist_rots[:, idx]
        glob = parent_rot @ rot
        for i, k in enumerate(level):
            local[k], world[k] = rot[:, i], glob[:, i]
    local_rotmats = torch.stack([local[k] for k in range(NUM_SMPL_JOINTS)], dim=1)
    theta = rearrange(matrix_to_axis_angle(local_rotmats), 'b j c -> b (j c)')
    return local_rotmats, theta


def twist_angles_from_pose(pose: Tensor, rest_joints29: Tensor) -> Tensor:
    """Twist angles of a pose, the inverse of the twist input of :func:`twist_swing_ik`.

    ``R_k`` is split as ``R_sw R_tw`` with ``R_sw = swing_rotation(t, R_k t)`` (the same rule
    as the IK, antiparallel case included) and ``phi_k`` read off ``R_tw``.

    Args:
        pose (Tensor): (B, 24, 3, 3) local rotations or (B, 72) SMPL axis-angle pose.
        rest_joints29 (Tensor): (B, 29, 3) or (1, 29, 3) rest skeleton in metres.

    Returns:
        Tensor: (B, 23) twist angles of joints 1..23 in radians, in (-pi, pi].
    """
    if pose.dim() == 2 and pose.shape[1] == 3 * NUM_SMPL_JOINTS:
        pose = axis_angle_to_matrix(rearrange(pose, 'b (j c) -> b j c', c=3))
    _check(pose, (NUM_SMPL_JOINTS, 3, 3), 'pose', ' or (B, 72)')
    rest = _rest_for(rest_joints29, pose.shape[0]).to(pose.dtype)
    t_units = _rest_bone_units(rest)
    rot = pose[:, list(_JOINTS)]
    swung = (rot @ t_units[..., None])[..., 0]
    twist_rot = swing_rotation(t_units, swung).transpose(-1, -2) @ rot
    sin_axis = torch.stack([
        twist_rot[..., 2, 1] - twist_rot[..., 1, 2], twist_rot[..., 0, 2] - twist_rot[..., 2, 0],
        twist_rot[..., 1, 0] - twist_rot[..., 0, 1]
    ], dim=-1) / 2
    cos = (twist_rot.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.atan2((sin_axis * t_units).sum(-1), cos)
