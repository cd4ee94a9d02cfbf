import math

import pytest
import torch
from einops import rearrange
from ik_helpers import finite_with_grads

from unspat_mm.models.body import SMPLBodyModel
from unspat_mm.models.utils import (axis_angle_to_matrix, forward_kinematics, geodesic_distance,
                                    matrix_to_axis_angle, rotation_about_axis, swing_rotation,
                                    twist_angles_from_pose, twist_swing_ik)
from unspat_mm.structures.skeleton import HYBRIK_PARENTS, IK_CHILD, LEAF_PARENTS

# A plausible SMPL-like rest skeleton (metres, y up, +x = the body's left, z forward).
TEMPLATE29 = torch.tensor([
    [0.00, -0.24, 0.03], [0.06, -0.33, 0.01], [-0.06, -0.33, 0.01], [0.00, -0.12, 0.00],
    [0.10, -0.71, 0.02], [-0.10, -0.71, 0.02], [0.00, 0.02, 0.02], [0.09, -1.11, -0.02],
    [-0.09, -1.11, -0.02], [0.00, 0.07, 0.03], [0.12, -1.17, 0.10], [-0.12, -1.17, 0.10],
    [0.00, 0.29, -0.01], [0.08, 0.20, 0.00], [-0.08, 0.20, 0.00], [0.00, 0.36, 0.04],
    [0.17, 0.23, -0.02], [-0.17, 0.23, -0.02], [0.43, 0.21, -0.04], [-0.43, 0.21, -0.04],
    [0.68, 0.22, -0.04], [-0.68, 0.22, -0.04], [0.77, 0.21, -0.05], [-0.77, 0.21, -0.05],
    [0.00, 0.56, 0.01], [0.85, 0.20, -0.05], [-0.85, 0.20, -0.05], [0.13, -1.20, 0.17],
    [-0.13, -1.20, 0.17]])
JOINTS = list(range(1, 24))


def template_rest(batch, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (TEMPLATE29 + 0.01 * torch.randn(batch, 29, 3, generator=g)).to(dtype)


def random_unit(shape, g, dtype=torch.float32):
    v = torch.randn(*shape, 3, generator=g, dtype=dtype)
    return v / v.norm(dim=-1, keepdim=True)


def natural_pose(batch, seed=0, dtype=torch.float32, max_angle=1.2):
    """(B, 24, 3) axis-angle: |angle| <= max_angle per joint, any root orientation."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(batch, 24, 1, generator=g, dtype=dtype) * max_angle
    angle[:, 0] = torch.rand(batch, 1, generator=g, dtype=dtype) * math.pi
    return random_unit((batch, 24), g, dtype) * angle


def round_trip(rest, aa):
    """theta -> FK -> (keypoints, true twist) -> IK -> FK; returns errors."""
    rot = axis_angle_to_matrix(aa)
    joints, _ = forward_kinematics(rot, rest)
    keypoints = joints - joints[:, :1]
    phi = twist_angles_from_pose(rot, rest)
    rot2, theta = twist_swing_ik(keypoints, torch.stack([phi.cos(), phi.sin()], -1), rest)
    joints2, _ = forward_kinematics(rot2, rest)
    joint_err = (joints2 - joints).norm(dim=-1)
    rot_err = geodesic_distance(rot, rot2)
    theta_err = geodesic_distance(
        axis_angle_to_matrix(rearrange(theta, 'b (j c) -> b j c', c=3)), rot2)
    return joint_err, rot_err, theta_err


def report(name, joint_err, rot_err):
    print(f'\n[{name}] joints: max {joint_err.max() * 1e3:.2e} mm, mean '
          f'{joint_err.mean() * 1e3:.2e} mm; local rotations: max {rot_err.max():.2e} rad, mean '
          f'{rot_err.mean():.2e} rad')


def test_forward_kinematics_rigid_chain():
    rest = template_rest(8, dtype=torch.float64)
    rot = axis_angle_to_matrix(natural_pose(8, dtype=torch.float64))
    joints, glob = forward_kinematics(rot, rest)
    # pelvis stays at the rest pelvis; each bone is its rest bone turned by the parent's
    # global rotation; global = parent's global @ local
    assert torch.allclose(joints[:, 0], rest[:, 0])
    for c in range(1, 29):
        p = HYBRIK_PARENTS[c]
        expected = (glob[:, p] @ (rest[:, c] - rest[:, p])[..., None])[..., 0]
        assert torch.allclose(joints[:, c] - joints[:, p], expected, atol=1e-12)
        if c < 24:
            assert torch.allclose(glob[:, c], glob[:, p] @ rot[:, c], atol=1e-12)
    assert torch.allclose(glob[:, 0], rot[:, 0])
    zero_pose, _ = forward_kinematics(torch.eye(3, dtype=torch.float64).expand(8, 24, 3, 3), rest)
    assert torch.allclose(zero_pose, rest, atol=1e-12)


def test_round_trip_template_skeleton():
    batch = 1024
    joint_err, rot_err, theta_err = round_trip(template_rest(batch, seed=1),
                                               natural_pose(batch, seed=2))
    report('template rest skeleton, float32, 1024 poses', joint_err, rot_err)
    # float32's resolution along a 1 m kinematic chain: about 1e-3 mm at worst
    assert joint_err.max() < 2e-6  # metres
    assert rot_err.max() < 1e-5  # radians
    assert theta_err.max() < 1e-5  # theta is the axis-angle of local_rotmats


@pytest.fixture(scope='module')
def standin(standin_model_dir):
    return SMPLBodyModel(standin_model_dir)


def random_betas(batch, seed):
    return torch.randn(batch, 10, generator=torch.Generator().manual_seed(seed))


def test_forward_kinematics_matches_body_model_joints(standin):
    betas = random_betas(16, seed=10)
    rot = axis_angle_to_matrix(natural_pose(16, seed=11))
    out = standin(rot, betas)
    joints, _ = forward_kinematics(rot, standin.rest_joints29(betas))
    # SMPL's 24 joints are exactly a rigid chain of its rest joints
    assert (joints[:, :24] - out['joints24']).abs().max() < 1e-5
    # the 5 leaf vertices are skinned, so they only approximately follow their parent
    assert (joints[:, 24:] - out['joints29'][:, 24:]).norm(dim=-1).max() < 5e-3


def test_round_trip_standin_rest_skeleton(standin):
    batch = 1024
    rest = standin.rest_joints29(random_betas(batch, seed=12))
    joint_err, rot_err, theta_err = round_trip(rest, natural_pose(batch, seed=13))
    report('stand-in rest skeleton, random betas, float32, 1024 poses', joint_err, rot_err)
    # float32's resolution along a 1 m kinematic chain: about 1e-3 mm at worst
    assert joint_err.max() < 2e-6  # metres
    assert rot_err.max() < 1e-5  # radians
    assert theta_err.max() < 1e-5


def test_skinned_leaf_points(standin):
    """Keypoints from the skinned mesh (what training targets are): the 24 joints are still
    exact, the leaf points move with skinning, which the IK maps to the leaf parents."""
    batch = 256
    betas = random_betas(batch, seed=14)
    rest = standin.rest_joints29(betas)
    rot = axis_angle_to_matrix(natural_pose(batch, seed=15))
    joints = standin(rot, betas)['joints29']
    phi = twist_angles_from_pose(rot, rest)
    rot2, _ = twist_swing_ik(joints - joints[:, :1], torch.stack([phi.cos(), phi.sin()], -1),
                             rest)
    joints2, _ = forward_kinematics(rot2, rest)
    joint_err = (joints2 - joints).norm(dim=-1)
    rot_err = geodesic_distance(rot, rot2)
    leaf_parents = list(LEAF_PARENTS)
    others = [k for k in range(24) if k not in leaf_parents]
    report('skinned leaves, stand-in, 256 poses: all 29 joints / 24 rotations', joint_err,
           rot_err)
    report('skinned leaves: leaf points / leaf parents (head, feet, hands)',
           joint_err[:, 24:], rot_err[:, leaf_parents])
    assert rot_err[:, others].max() < 1e-3
    assert joint_err[:, :24].max() < 1e-3
    # loose: skinning error, not IK error (stand-in measured ~0.5 mm and ~0.01 rad)
    assert joint_err[:, 24:].max() < 5e-3
    assert rot_err[:, leaf_parents].max() < 0.05


def test_round_trip_is_exact_in_float64_and_translation_invariant():
    rest = template_rest(64, seed=3, dtype=torch.float64)
    rot = axis_angle_to_matrix(natural_pose(64, seed=4, dtype=torch.float64))
    joints, _ = forward_kinematics(rot, rest)
    twist = twist_angles_from_pose(rot, rest)
    twist = torch.stack([twist.cos(), twist.sin()], -1) * 3.0  # scale is normalised away
    rot_a, _ = twist_swing_ik(joints - joints[:, :1], twist, rest)
    rot_b, _ = twist_swing_ik(joints + torch.tensor([0.3, -1.0, 4.0], dtype=torch.float64),
                              twist, rest)
    assert geodesic_distance(rot, rot_a).max() < 1e-7
    assert geodesic_distance(rot_a, rot_b).max() < 1e-9


def test_twist_angles_from_pose_inverts_known_twist():
    g = torch.Generator().manual_seed(5)
    rest = template_rest(256, seed=6, dtype=torch.float64)
    t = rest[:, [IK_CHILD[k] for k in JOINTS]] - rest[:, JOINTS]
    t_unit = t / t.norm(dim=-1, keepdim=True)
    phi = (torch.rand(256, 23, generator=g, dtype=torch.float64) * 2 - 1) * (math.pi - 1e-3)
    target = random_unit((256, 23), g, torch.float64)
    target[0] = -t_unit[0]  # antiparallel swings use the same rule both ways
    rot = swing_rotation(t_unit, target) @ rotation_about_axis(t_unit, phi.cos(), phi.sin())
    pose = torch.cat([axis_angle_to_matrix(random_unit((256, 1), g, torch.float64)), rot], 1)
    assert (twist_angles_from_pose(pose, rest) - phi).abs().max() < 1e-5
    # the (B, 72) axis-angle form is accepted too
    theta = rearrange(matrix_to_axis_angle(pose), 'b j c -> b (j c)')
    assert (twist_angles_from_pose(theta, rest) - phi).abs().max() < 1e-5
    # the swing leaves its own axis untwisted, and twist-only poses give their angle back
    assert twist_angles_from_pose(
        torch.cat([pose[:, :1], swing_rotation(t_unit, target)], 1), rest).abs().max() < 1e-9


def _valid_inputs(batch=4, seed=7):
    rest = template_rest(batch, seed=seed)
    rot = axis_angle_to_matrix(natural_pose(batch, seed=seed))
    joints, _ = forward_kinematics(rot, rest)
    phi = twist_angles_from_pose(rot, rest)
    return joints - joints[:, :1], torch.stack([phi.cos(), phi.sin()], -1), rest


def test_degenerate_zero_length_bones_and_zero_keypoints():
    keypoints, twist, rest = _valid_inputs()
    kp = keypoints.clone()
    kp[:, 4] = kp[:, 1]  # left knee on the left hip: zero target bone
    kp[:, 24] = kp[:, 15]  # head top on the head
    rot = finite_with_grads(kp, rest, twist=twist)
    # no swing information -> only the predicted twist about the rest bone
    assert geodesic_distance(rot[:, 1], rotation_about_axis(
        rest[:, 4] - rest[:, 1], twist[:, 0, 0], twist[:, 0, 1])).max() < 1e-5
    rest_zero = rest.clone()
    rest_zero[:, 20] = rest_zero[:, 18]  # zero rest bone (left elbow -> wrist)
    finite_with_grads(keypoints, rest_zero, twist=twist)
    finite_with_grads(torch.zeros_like(keypoints), rest, twist=twist)
    finite_with_grads(torch.zeros_like(keypoints), torch.zeros_like(rest),
                      twist=torch.zeros_like(twist))


def test_degenerate_twist_zero_pair_means_no_twist():
    keypoints, twist, rest = _valid_inputs()
    rot = finite_with_grads(keypoints, rest, twist=torch.zeros_like(twist))
    rot_ref, _ = twist_swing_ik(keypoints, torch.tensor([1., 0.]).expand_as(twist), rest)
    assert torch.allclose(rot, rot_ref, atol=1e-6)


def test_degenerate_antiparallel_and_parallel_bones():
    rest = template_rest(3, seed=8)
    kp = rest - rest[:, :1]  # rest pose: root and all parents are the identity
    twist = torch.tensor([1., 0.]).expand(3, 23, 2)
    # left elbow -> wrist reversed (exactly), and almost reversed
    kp = kp.clone()
    bone = rest[:, 20] - rest[:, 18]
    kp[0, 20] = kp[0, 18] - bone[0]
    kp[1, 20] = kp[1, 18] - bone[1] + torch.tensor([0., 1e-7, 0.])
    # root: hip line parallel to the spine bone (degenerate for a frame built from the two)
    kp[2, 3] = kp[2, 0] + (kp[2, 2] - kp[2, 1])
    rot = finite_with_grads(kp, rest, twist=twist)
    joints, _ = forward_kinematics(rot, rest)
    # the reversed forearm is still reached: the swing is a half-turn
    assert (joints[:2, 20] - joints[:2, 18] + bone[:2]).norm(dim=-1).max() < 1e-5
    assert (geodesic_distance(rot[:2, 18], torch.eye(3)) - math.pi).abs().max() < 1e-3
    # the twist read back from the result is the (zero) twist that went in
    assert twist_angles_from_pose(rot[:1], rest[:1]).abs().max() < 1e-5


def test_gradcheck_float64():
    keypoints, twist, rest = _valid_inputs(batch=2, seed=9)
    keypoints = keypoints.double().requires_grad_()
    twist = twist.double().requires_grad_()
    weights = torch.tensor([[1., 2., 3.], [.5, .1, 4.]], dtype=torch.float64,
                           requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda k, t: twist_swing_ik(k, t, rest.double())[0], (keypoints, twist))
    # the root's gradient reaches its weights too (noisy keypoints, so that they matter)
    noisy = keypoints.detach() + 0.01 * torch.randn(
        keypoints.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda k, w: twist_swing_ik(k, twist.detach(), rest.double(), weights=w)[0],
        (noisy.requires_grad_(), weights))


def test_bad_shapes_raise():
    keypoints, twist, rest = _valid_inputs(batch=2)
    with pytest.raises(ValueError, match=r'keypoints29 must have shape \(B, 29, 3\)'):
        twist_swing_ik(keypoints[:, :24], twist, rest)
    with pytest.raises(ValueError, match='cos, sin'):
        twist_swing_ik(keypoints, twist[..., :1], rest)
    with pytest.raises(ValueError, match='twist has batch 1'):
        twist_swing_ik(keypoints, twist[:1], rest)
    with pytest.raises(ValueError, match='rest_joints29 has batch 3'):
        twist_swing_ik(keypoints, twist, torch.zeros(3, 29, 3))
    with pytest.raises(ValueError, match='axis_angle_to_matrix'):
        forward_kinematics(torch.zeros(2, 72), rest)
    with pytest.raises(ValueError, match=r'or \(B, 72\)'):
        twist_angles_from_pose(torch.zeros(2, 69), rest)
    # one shared rest skeleton broadcasts over the batch
    rot_a, _ = twist_swing_ik(keypoints, twist, rest[:1])
    rot_b, _ = twist_swing_ik(keypoints, twist, rest[:1].expand(2, -1, -1))
    assert torch.equal(rot_a, rot_b)
