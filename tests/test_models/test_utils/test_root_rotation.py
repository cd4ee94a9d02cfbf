import math

import numpy as np
import pytest
import torch
from ik_helpers import finite_with_grads, is_rotation
from scipy.spatial.transform import Rotation

from unspat_mm.models.body import SMPLBodyModel
from unspat_mm.models.utils import (axis_angle_to_matrix, forward_kinematics, geodesic_distance,
                                    procrustes_rotation, root_point_weights, root_rotation,
                                    twist_angles_from_pose, twist_swing_ik)
from unspat_mm.models.utils.root_rotation import ROOT_POINTS, quaternion_procrustes_rotation
from unspat_mm.structures.skeleton import ROOT_CHILDREN

# Pelvis, left hip, right hip, spine1 of an SMPL-like rest skeleton (metres, y up).
REST_ROOT = torch.tensor([[0.00, -0.24, 0.03], [0.06, -0.33, 0.01], [-0.06, -0.33, 0.01],
                          [0.00, -0.12, 0.00]])


def random_rotations(batch, seed, dtype=torch.float32, max_angle=math.pi):
    g = torch.Generator().manual_seed(seed)
    axis = torch.randn(batch, 3, generator=g, dtype=dtype)
    angle = torch.rand(batch, 1, generator=g, dtype=dtype) * max_angle
    return axis_angle_to_matrix(axis / axis.norm(dim=-1, keepdim=True) * angle)


def rest_skeletons(batch, seed, dtype=torch.float32):
    """(B, 29, 3): REST_ROOT with 1 cm jitter, the other 25 joints random (unused by the root)."""
    g = torch.Generator().manual_seed(seed)
    rest = 0.3 * torch.randn(batch, 29, 3, generator=g, dtype=dtype)
    rest[:, :4] = REST_ROOT.to(dtype) + 0.01 * torch.randn(batch, 4, 3, generator=g, dtype=dtype)
    return rest


def posed(rest, rot, shift=0.):
    """Keypoints whose root points are the rest ones turned by ``rot`` (B, 3, 3), shifted."""
    return (rest - rest[:, :1]) @ rot.transpose(-1, -2) + shift


def hybrik_svd_root(keypoints, rest, unit):
    """HybrIK's evaluation root, re-derived from its equations in float64 numpy:
    S = sum_children rest (x) target over the pelvis's children (bone vectors from the pelvis
    as HybrIK's ``batch_get_pelvis_orient_svd`` uses them, or unit directions with zero-norm
    children masked), S = U diag(s) V^T, R = V diag(1, 1, det(V U^T)) U^T; S = 0 -> I."""
    children = list(ROOT_CHILDREN)
    t = (rest[:, children] - rest[:, :1]).double().numpy()
    p = (keypoints[:, children] - keypoints[:, :1]).double().numpy()
    if unit:
        for v in (t, p):
            norm = np.linalg.norm(v, axis=-1, keepdims=True)
            v[...] = np.where(norm > 1e-9, v / np.maximum(norm, 1e-9), 0.)
    cov = np.einsum('bki,bkj->bij', t, p)
    u, _, vt = np.linalg.svd(cov)
    v = np.swapaxes(vt, 1, 2)
    det = np.linalg.det(v @ np.swapaxes(u, 1, 2))
    fix = np.zeros_like(cov)
    fix[:, 0, 0] = fix[:, 1, 1] = 1.
    fix[:, 2, 2] = det
    rot = v @ fix @ np.swapaxes(u, 1, 2)
    rot[np.abs(cov).sum(axis=(1, 2)) == 0] = np.eye(3)
    return torch.from_numpy(rot).to(keypoints.dtype)


def test_exact_for_a_rigidly_moved_pelvis_in_float64():
    rest = rest_skeletons(256, seed=0, dtype=torch.float64)
    rot = random_rotations(256, seed=1, dtype=torch.float64)
    keypoints = posed(rest, rot, shift=torch.tensor([0.5, -2., 3.], dtype=torch.float64))
    weights = torch.rand(256, 29, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64) + 0.1
    for w in (None, weights, weights[:, :3]):
        assert geodesic_distance(root_rotation(keypoints, rest, w), rot).max() < 1e-7


def test_procrustes_matches_scipy_wahba_on_centred_points():
    g = torch.Generator().manual_seed(3)
    source = torch.randn(64, 5, 3, generator=g, dtype=torch.float64)
    target = torch.randn(64, 5, 3, generator=g, dtype=torch.float64) + 2.
    weights = torch.rand(64, 5, generator=g, dtype=torch.float64)
    weights = weights / weights.sum(-1, keepdim=True)
    rot = procrustes_rotation(source, target, weights)
    for b in range(64):
        w = weights[b].numpy()
        x = source[b].numpy() - w @ source[b].numpy()
        y = target[b].numpy() - w @ target[b].numpy()
        expected = Rotation.align_vectors(y, x, weights=w)[0].as_matrix()
        np.testing.assert_allclose(rot[b].numpy(), expected, atol=1e-9)


def test_implicit_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(4)
    source = torch.randn(3, 4, 3, generator=g, dtype=torch.float64).requires_grad_()
    target = torch.randn(3, 4, 3, generator=g, dtype=torch.float64).requires_grad_()
    weights = (torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.2).requires_grad_()
    # a nearly planar set too (the pelvis and its children almost are)
    planar = (REST_ROOT.double() + 1e-3 * torch.randn(4, 3, generator=g, dtype=torch.float64))
    assert torch.autograd.gradcheck(procrustes_rotation, (source, target, weights))
    assert torch.autograd.gradcheck(
        lambda t: procrustes_rotation(planar.expand(3, 4, 3), t), (target, ))


@pytest.mark.parametrize('case', ['coincident_children', 'all_at_pelvis', 'collinear',
                                  'zero_hip_bone', 'all_zero', 'zero_rest'])
@pytest.mark.parametrize('weighted', [False, True])
def test_degenerate_root_points_give_finite_values_and_gradients(case, weighted):
    rest = rest_skeletons(4, seed=5)
    keypoints = posed(rest, random_rotations(4, seed=6))
    if case == 'coincident_children':
        keypoints[:, [1, 2, 3]] = keypoints[:, 1:2]
    elif case == 'all_at_pelvis':
        keypoints[:, [1, 2, 3]] = keypoints[:, :1]
    elif case == 'collinear':
        line = torch.tensor([0.3, -0.5, 0.8])
        keypoints[:, :4] = torch.tensor([0., 0.1, -0.1, 0.25])[:, None] * line
    elif case == 'zero_hip_bone':
        keypoints[:, 1] = keypoints[:, 0]
    elif case == 'all_zero':
        keypoints = torch.zeros_like(keypoints)
    else:
        rest = torch.zeros_like(rest)
    weights = torch.rand(4, 29, generator=torch.Generator().manual_seed(7)) if weighted else None
    finite_with_grads(keypoints, rest, weights=weights)
    if case == 'all_zero':  # nothing to fit: identity
        assert torch.allclose(root_rotation(keypoints, rest, weights), torch.eye(3).expand(4, 3, 3))


def test_collinear_points_keep_their_line():
    """Rest and target points on a line: the spin about it is free, the line is not."""
    rest = torch.zeros(8, 29, 3)
    rest[:, :4] = torch.tensor([0., 0.1, -0.1, 0.25])[:, None] * torch.tensor([0., 1., 0.])
    rot = random_rotations(8, seed=8)
    rotated = root_rotation(posed(rest, rot), rest)
    axis = torch.tensor([0., 1., 0.])
    assert (rotated @ axis - rot @ axis).norm(dim=-1).max() < 1e-5


def test_zero_weights_and_weight_forms():
    rest = rest_skeletons(16, seed=9)
    g = torch.Generator().manual_seed(10)
    noise = 0.02 * torch.randn(16, 29, 3, generator=g)
    keypoints = posed(rest, random_rotations(16, seed=11)) + noise
    w29 = torch.rand(16, 29, generator=g) + 0.1
    unweighted = root_rotation(keypoints, rest)
    # only the pelvis and its children count; scale does not matter
    other = w29.clone()
    other[:, 4:] = 7.
    assert torch.allclose(root_rotation(keypoints, rest, w29),
                          root_rotation(keypoints, rest, 3 * other), atol=1e-6)
    # (B, 3): children's weights, the pelvis gets their mean
    w3 = w29[:, 1:4]
    as29 = torch.zeros_like(w29)
    as29[:, 0], as29[:, 1:4] = w3.mean(-1), w3
    assert torch.allclose(root_rotation(keypoints, rest, w3), root_rotation(keypoints, rest, as29),
                          atol=1e-6)
    # all-zero or all-negative weights fall back to equal weights
    assert torch.allclose(root_rotation(keypoints, rest, torch.zeros(16, 3)), unweighted)
    assert torch.allclose(root_rotation(keypoints, rest, -torch.ones(16, 29)), unweighted)
    assert torch.allclose(root_point_weights(-torch.ones(2, 3), 2, rest), torch.full((2, 4), .25))
    with pytest.raises(ValueError, match=r'weights must have shape \(B, 29\) or \(B, 3\)'):
        root_rotation(keypoints, rest, torch.ones(16, 4))
    with pytest.raises(ValueError, match='with B = 16'):
        twist_swing_ik(keypoints, torch.zeros(16, 23, 2), rest, weights=torch.ones(15, 29))


def test_low_weight_on_a_corrupted_child_recovers_the_root():
    rest = rest_skeletons(512, seed=12)
    rot = random_rotations(512, seed=13)
    g = torch.Generator().manual_seed(14)
    keypoints = posed(rest, rot) + 0.002 * torch.randn(512, 29, 3, generator=g)
    corrupted = keypoints.clone()
    offset = torch.randn(512, 3, generator=g)
    corrupted[:, 2] += 0.08 * offset / offset.norm(dim=-1, keepdim=True)  # 8 cm off
    weights = torch.ones(512, 3)
    weights[:, 1] = 1e-3  # the right hip (ROOT_CHILDREN[1])
    err_unweighted = geodesic_distance(root_rotation(corrupted, rest), rot).rad2deg()
    err_weighted = geodesic_distance(root_rotation(corrupted, rest, weights), rot).rad2deg()
    err_clean = geodesic_distance(root_rotation(keypoints, rest), rot).rad2deg()
    print(f'\n[corrupted right hip] root error mean: unweighted {err_unweighted.mean():.2f} '
          f'deg, weighted {err_weighted.mean():.2f} deg (clean keypoints {err_clean.mean():.2f})')
    assert err_weighted.mean() < 0.2 * err_unweighted.mean()
    assert (err_weighted < err_unweighted).float().mean() > 0.9
    # the IK uses the same root, and passes the weights through
    twist = torch.tensor([1., 0.]).expand(512, 23, 2)
    rot_ik, _ = twist_swing_ik(corrupted, twist, rest, weights=weights)
    assert torch.allclose(rot_ik[:, 0], root_rotation(corrupted, rest, weights), atol=1e-6)


def test_given_root_rotmat_is_used():
    rest = rest_skeletons(8, seed=15)
    rot = random_rotations(8, seed=16)
    keypoints = posed(rest, rot)
    twist = torch.tensor([1., 0.]).expand(8, 23, 2)
    other = random_rotations(8, seed=17)
    rot_ik, _ = twist_swing_ik(keypoints, twist, rest, root_rotmat=other)
    assert torch.allclose(rot_ik[:, 0], other)
    with pytest.raises(ValueError, match=r'root_rotmat must have shape \(B, 3, 3\)'):
        twist_swing_ik(keypoints, twist, rest, root_rotmat=other[:, :2])
    with pytest.raises(ValueError, match='root_rotmat has batch 1'):
        twist_swing_ik(keypoints, twist, rest, root_rotmat=other[:1])


def well_posed_root_fits(batch, seed, dtype=torch.float32, noise=0.02):
    """(source, target, weights) of the root fit: random rotations of jittered pelvis
    points plus Gaussian noise (``noise`` metres per coordinate), random positive weights
    normalised to 1."""
    rest = rest_skeletons(batch, seed, dtype)[:, list(ROOT_POINTS)]
    g = torch.Generator().manual_seed(seed + 1)
    target = posed(rest, random_rotations(batch, seed + 2, dtype), shift=0.5) + noise * torch.randn(
        rest.shape, generator=g, dtype=dtype)
    weights = torch.rand(batch, len(ROOT_POINTS), generator=g, dtype=dtype) + 0.05
    return rest, target, weights / weights.sum(-1, keepdim=True)


@pytest.mark.parametrize('noise', [0., 0.005, 0.02, 0.05])
def test_export_fit_equals_the_svd_fit_where_well_posed(noise):
    """Horn's quaternion fit (what ONNX export traces) against the eager SVD fit, float32,
    angle between the two rotations: 8192 fits per noise level."""
    source, target, weights = well_posed_root_fits(8192, seed=20, noise=noise)
    svd = procrustes_rotation(source, target, weights)
    quaternion = quaternion_procrustes_rotation(source, target, weights)
    assert quaternion.dtype == torch.float32 and is_rotation(quaternion)
    angle = geodesic_distance(svd.double(), quaternion.double())
    print(f'\n[noise {noise * 1e3:.0f} mm] export fit vs SVD fit: max {angle.max():.1e} rad')
    assert angle.max() < 1e-5
    # float64 in, float64 out, equal to float64 rounding
    source, target, weights = (x.double() for x in (source, target, weights))
    angle = geodesic_distance(procrustes_rotation(source, target, weights),
                              quaternion_procrustes_rotation(source, target, weights))
    assert angle.max() < 1e-10


def test_export_fit_replaces_the_svd_while_exporting(monkeypatch):
    source, target, weights = well_posed_root_fits(16, seed=21)
    svd = procrustes_rotation(source, target, weights)
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    exported = procrustes_rotation(source, target, weights)
    assert torch.equal(exported, quaternion_procrustes_rotation(source, target, weights))
    assert geodesic_distance(svd, exported).max() < 1e-5
    # and twist_swing_ik's root is that fit
    keypoints = torch.zeros(16, 29, 3)
    keypoints[:, list(ROOT_POINTS)] = target
    rest = torch.zeros(16, 29, 3)
    rest[:, list(ROOT_POINTS)] = source
    weights29 = torch.ones(16, 29)
    weights29[:, list(ROOT_POINTS)] = weights
    rot_ik, _ = twist_swing_ik(keypoints, torch.tensor([1., 0.]).expand(16, 23, 2), rest,
                               weights=weights29)
    assert geodesic_distance(rot_ik[:, 0], svd).max() < 1e-5


@pytest.mark.parametrize('case', ['coincident_children', 'all_at_pelvis', 'collinear',
                                  'collinear_target', 'zero_hip_bone', 'all_zero', 'zero_rest',
                                  'tiny'])
def test_export_fit_on_degenerate_points_is_a_rotation(case):
    """Where the fit is not determined the export fit may differ from the SVD's, but it is
    finite, a proper rotation and optimal: it carries the line of collinear points like the
    SVD fit; nothing to fit gives the identity, as in the eager fit."""
    rest = rest_skeletons(64, seed=22)[:, list(ROOT_POINTS)]
    rot = random_rotations(64, seed=23)
    target = posed(rest, rot)
    if case == 'coincident_children':
        target[:, 1:] = target[:, 1:2]
    elif case == 'all_at_pelvis':
        target[:, 1:] = target[:, :1]
    elif case == 'collinear':  # both point sets on a line: the spin about it is free
        rest = torch.tensor([0., 0.1, -0.1, 0.25])[:, None] * torch.tensor([0., 1., 0.])
        rest = rest.expand(64, 4, 3)
        target = posed(rest, rot)
    elif case == 'collinear_target':  # rank-1 covariance
        target = torch.tensor([0., 0.1, -0.1, 0.25])[:, None] * torch.tensor([0.3, -0.5, 0.8])
        target = target.expand(64, 4, 3)
    elif case == 'zero_hip_bone':
        target[:, 1] = target[:, 0]
    elif case == 'all_zero':
        target = torch.zeros_like(target)
    elif case == 'zero_rest':
        rest = torch.zeros_like(rest)
    else:  # a rigid fit of points 1e-20 m apart: no underflow to NaN
        target = 1e-20 * target
    weights = torch.rand(64, 4, generator=torch.Generator().manual_seed(24)) + 0.01
    weights = weights / weights.sum(-1, keepdim=True)
    fit = quaternion_procrustes_rotation(rest, target, weights)
    assert torch.isfinite(fit).all() and is_rotation(fit)
    if case in ('all_zero', 'all_at_pelvis', 'zero_rest'):  # H = 0
        assert torch.equal(fit, torch.eye(3).expand(64, 3, 3))
    if case == 'collinear':
        axis = torch.tensor([0., 1., 0.])
        assert (fit @ axis - rot @ axis).norm(dim=-1).max() < 1e-5
    if case == 'tiny':  # scale does not matter
        assert geodesic_distance(fit, rot).max() < 1e-5


@pytest.fixture(scope='module')
def noisy_poses(standin_model_dir):
    """2000 natural poses (angles <= 1.2 rad, any root) on stand-in rest skeletons."""
    batch = 2000
    g = torch.Generator().manual_seed(18)
    rest = SMPLBodyModel(standin_model_dir).rest_joints29(torch.randn(batch, 10, generator=g))
    axis = torch.randn(batch, 24, 3, generator=g)
    angle = torch.rand(batch, 24, 1, generator=g) * 1.2
    angle[:, 0] = torch.rand(batch, 1, generator=g) * math.pi
    rot = axis_angle_to_matrix(axis / axis.norm(dim=-1, keepdim=True) * angle)
    joints, _ = forward_kinematics(rot.detach(), rest.detach())
    phi = twist_angles_from_pose(rot, rest)
    return dict(rest=rest.detach(), rot=rot, joints=joints, noise=torch.randn(
        joints.shape, generator=g), twist=torch.stack([phi.cos(), phi.sin()], -1))


@pytest.mark.parametrize('noise_mm', [5, 10, 20, 40])
def test_noise_sweep_at_least_as_accurate_as_hybrik_svd(noisy_poses, noise_mm):
    """Isotropic Gaussian noise (std per coordinate) on all 29 keypoints, then root-relative;
    the IK's root against HybrIK's SVD root on the same keypoints, paired per pose."""
    noisy = noisy_poses['joints'] + noise_mm * 1e-3 * noisy_poses['noise']
    keypoints = noisy - noisy[:, :1]
    truth = noisy_poses['rot'][:, 0]
    with torch.no_grad():
        rot, _ = twist_swing_ik(keypoints, noisy_poses['twist'], noisy_poses['rest'])
    err = geodesic_distance(rot[:, 0], truth).rad2deg()
    line = f'\n[{noise_mm} mm] root error mean: IK {err.mean():.2f} deg'
    for unit in (False, True):
        err_ref = geodesic_distance(hybrik_svd_root(keypoints, noisy_poses['rest'], unit),
                                    truth).rad2deg()
        diff = err - err_ref
        line += (f', HybrIK SVD ({"directions" if unit else "bone vectors"}) '
                 f'{err_ref.mean():.2f} deg')
        assert err.mean() <= err_ref.mean() + 1e-3
        # and not by chance: the paired mean difference is more than 3 standard errors
        assert diff.mean() < -3 * diff.std() / math.sqrt(len(diff))
    print(line)
