import math

import pytest
import torch
from scipy.spatial.transform import Rotation

from unspat_mm.models.losses import BetaLoss, ThetaLoss, TwistLoss, to_rotation_matrices
from unspat_mm.registry import MODELS

MASK = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)  # sample 1 is masked


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def _check_masked_sample_is_ignored(loss, pred, target, perturb):
    """Changing sample 1 (masked, its target NaN) changes neither loss nor gradient."""

    def run(p, t):
        p = p.clone().requires_grad_(True)
        value = loss(p, t, MASK)
        value.backward()
        return value.detach(), p.grad

    ref_value, ref_grad = run(pred, target)
    pred2, target2 = pred.clone(), target.clone()
    pred2[1] = perturb(pred2[1])
    target2[1] = float('nan')
    value, grad = run(pred2, target2)
    assert torch.equal(value, ref_value) and torch.equal(grad, ref_grad)
    assert (grad[1] == 0).all()


def _check_zero_with_finite_grad_at_gt(loss, target):
    pred = target.clone().requires_grad_(True)
    value = loss(pred, target, MASK)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()


# ---------------------------------------------------------------- beta
def test_beta_loss_is_masked_mse():
    pred, target = _rand(3, 10), _rand(3, 10, seed=1)
    ref = ((pred - target)**2)[[0, 2]].mean()
    assert torch.allclose(BetaLoss()(pred, target, MASK), ref, atol=1e-12)
    assert torch.allclose(BetaLoss()(pred, target, MASK[:, None]), ref, atol=1e-12)
    assert torch.allclose(BetaLoss(reduction='sum')(pred, target, MASK),
                          ((pred - target)**2)[[0, 2]].sum(), atol=1e-12)
    built = MODELS.build(dict(type='BetaLoss', loss_weight=2.0))
    assert torch.allclose(built(pred, target), 2 * ((pred - target)**2).mean(), atol=1e-12)


def test_beta_loss_zero_at_gt_growing_and_masked():
    target = _rand(3, 10)
    _check_zero_with_finite_grad_at_gt(BetaLoss(), target)
    d = _rand(3, 10, seed=2)
    values = [BetaLoss()(target + t * d, target).item() for t in (0.0, 0.1, 0.5, 1.0)]
    assert values == sorted(values) and values[0] == 0.0 < values[1]
    _check_masked_sample_is_ignored(BetaLoss(), _rand(3, 10, seed=3), target, lambda x: x + 7)


# ---------------------------------------------------------------- theta
def _axis_angle(b, j, seed):
    rot = Rotation.random(b * j, random_state=seed).as_rotvec()
    return torch.tensor(rot, dtype=torch.float64).reshape(b, j, 3)


def test_rotation_inputs_agree_with_scipy():
    aa = _axis_angle(2, 24, seed=0)
    mats = to_rotation_matrices(aa.reshape(2, 72))
    ref = Rotation.from_rotvec(aa.reshape(-1, 3).numpy()).as_matrix().reshape(2, 24, 3, 3)
    torch.testing.assert_close(mats, torch.tensor(ref), atol=1e-7, rtol=0)
    assert to_rotation_matrices(mats) is mats
    with pytest.raises(ValueError, match=r'\(B, J, 3, 3\) or axis-angle'):
        to_rotation_matrices(torch.zeros(2, 24, 4))


def test_theta_loss_closed_form_for_a_known_relative_rotation():
    """||R1 - R2||_F^2 = 4 (1 - cos a) for a relative rotation by angle a."""
    target = _axis_angle(3, 24, seed=1)
    angles = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    target_mats = to_rotation_matrices(target)
    rel = to_rotation_matrices(torch.tensor([[[0.0, 0.0, a]] for a in angles.tolist()],
                                            dtype=torch.float64))  # about z, joint 5 only
    pred_mats = target_mats.clone()
    pred_mats[:, 5] = target_mats[:, 5] @ rel[:, 0]
    per_sample = 4 * (1 - torch.cos(angles)) / (24 * 9)
    loss = ThetaLoss()
    assert torch.allclose(loss(pred_mats, target, MASK), per_sample[[0, 2]].mean(), atol=1e-10)
    assert torch.allclose(loss(pred_mats, target.reshape(3, 72)), per_sample.mean(), atol=1e-10)
    none = ThetaLoss(reduction='none')(pred_mats, target)
    assert none.shape == (3, 24) and (none[:, [j for j in range(24) if j != 5]] == 0).all()


def test_theta_loss_is_blind_to_axis_angle_ambiguity():
    """Matrices, unlike raw axis-angle, see theta and theta - 2*pi*theta/|theta| as equal."""
    target = _axis_angle(3, 23, seed=2)
    norm = target.norm(dim=-1, keepdim=True)
    same_rotation = target * (1 - 2 * math.pi / norm)
    assert ThetaLoss()(same_rotation, target).item() < 1e-12
    assert ((same_rotation - target)**2).mean() > 1.0


def test_theta_loss_zero_at_gt_growing_and_masked():
    target = _axis_angle(3, 24, seed=3)
    target[0, 0] = 0.0  # the identity, where axis-angle has no axis
    _check_zero_with_finite_grad_at_gt(ThetaLoss(), target)
    d = _rand(3, 24, 3, seed=4)
    values = [ThetaLoss()(target + t * d, target).item() for t in (0.0, 0.05, 0.2, 0.5)]
    assert values == sorted(values) and values[0] == 0.0 < values[1]
    _check_masked_sample_is_ignored(ThetaLoss(), _axis_angle(3, 24, seed=5), target,
                                    lambda x: x * 3 + 1)


# ---------------------------------------------------------------- twist
def test_twist_loss_closed_form():
    """For unit predictions at angle a: |(cos a, sin a) - (cos p, sin p)| = 2 |sin((a - p) / 2)|."""
    phi = _rand(3, 23, seed=6) * 2
    a = _rand(3, 23, seed=7) * 2
    pred = torch.stack([torch.cos(a), torch.sin(a)], dim=-1)
    chord = 2 * torch.sin((a - phi) / 2).abs()
    assert torch.allclose(TwistLoss()(pred, phi, MASK), chord[[0, 2]].mean(), atol=1e-12)
    assert torch.allclose(TwistLoss(squared=True)(pred, phi, MASK),
                          (chord**2)[[0, 2]].mean(), atol=1e-12)
    as_vectors = torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)
    assert torch.allclose(TwistLoss()(pred, as_vectors, MASK), chord[[0, 2]].mean(), atol=1e-12)
    # a per-joint mask (B, K, 1) excludes single joints
    jmask = torch.ones(3, 23, 1, dtype=torch.float64)
    jmask[0, :10] = 0
    ref = torch.cat([chord[0, 10:], chord[1], chord[2]]).mean()
    assert torch.allclose(TwistLoss()(pred, phi, jmask), ref, atol=1e-12)


@pytest.mark.parametrize('squared', [False, True])
def test_twist_loss_zero_at_gt_growing_and_masked(squared):
    phi = _rand(3, 23, seed=8)
    target = torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)
    loss = TwistLoss(squared=squared)
    # exactly at the GT the L2 norm is not differentiable: the gradient must stay finite
    _check_zero_with_finite_grad_at_gt(loss, target)
    d = _rand(3, 23, 2, seed=9)
    values = [loss(target + t * d, phi).item() for t in (0.0, 0.1, 0.3, 1.0)]
    assert values == sorted(values) and values[0] < 1e-15 < values[1]
    _check_masked_sample_is_ignored(loss, _rand(3, 23, 2, seed=10), target, lambda x: x - 5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r'pred must be \(B, K, 2\)'):
        TwistLoss()(torch.zeros(2, 23), torch.zeros(2, 23))
    with pytest.raises(ValueError, match='same shape'):
        TwistLoss()(torch.zeros(2, 23, 2), torch.zeros(2, 24))
    with pytest.raises(ValueError, match='same shape'):
        ThetaLoss()(torch.zeros(2, 72), torch.zeros(2, 69))
    with pytest.raises(ValueError, match='same shape'):
        BetaLoss()(torch.zeros(2, 10), torch.zeros(2, 11))
    with pytest.raises(ValueError, match='target_weight must be'):
        BetaLoss()(torch.zeros(2, 10), torch.zeros(2, 10), torch.ones(3))
    with pytest.raises(ValueError, match='reduction'):
        ThetaLoss(reduction='batchmean')
