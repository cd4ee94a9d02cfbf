import math

import pytest
import torch

from unspat_mm.models.losses import LaplacianKeypointLoss
from unspat_mm.registry import MODELS

SQRT2 = math.sqrt(2.0)


def _data(seed=0, b=4, k=6, d=3):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(b, k, d, generator=g, dtype=torch.float64)
    target = torch.randn(b, k, d, generator=g, dtype=torch.float64)
    sigma = torch.rand(b, k, 1, generator=g, dtype=torch.float64) + 0.1
    weight = (torch.rand(b, k, generator=g, dtype=torch.float64) > 0.3).double()
    weight[0, 0] = 2.0  # a real weight, not just validity
    return pred, target, sigma, weight


def _closed_form(pred, target, sigma, weight):
    num = den = 0.0
    for b in range(pred.shape[0]):
        for k in range(pred.shape[1]):
            w = float(weight[b, k])
            if w <= 0:
                continue
            s = float(sigma[b, k, 0])
            mean_abs = sum(abs(float(pred[b, k, d] - target[b, k, d]))
                           for d in range(pred.shape[2])) / pred.shape[2]
            num += w * (math.log(SQRT2 * s) + SQRT2 * mean_abs / s)
            den += w
    return num / den, num


@pytest.mark.parametrize('dim', [3, 2])
def test_equals_closed_form(dim):
    pred, target, sigma, weight = _data(d=dim)
    mean_ref, sum_ref = _closed_form(pred, target, sigma, weight)
    loss = LaplacianKeypointLoss()
    assert abs(loss(pred, sigma, target, weight).item() - mean_ref) < 1e-10
    assert abs(LaplacianKeypointLoss(reduction='sum')(pred, sigma, target, weight).item()
               - sum_ref) < 1e-10
    none = LaplacianKeypointLoss(reduction='none')(pred, sigma, target, weight)
    assert none.shape == weight.shape and (none[weight == 0] == 0).all()
    scaled = MODELS.build(dict(type='LaplacianKeypointLoss', loss_weight=0.5))
    assert abs(scaled(pred, sigma[..., 0], target, weight[..., None]).item()
               - 0.5 * mean_ref) < 1e-10


def test_sample_weight_shapes_agree():
    pred, target, sigma, _ = _data(1)
    per_sample = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    loss = LaplacianKeypointLoss()
    ref = loss(pred, sigma, target, per_sample[:, None].expand(-1, 6))
    for w in (per_sample, per_sample[:, None], per_sample[:, None, None].expand(-1, 6, 1)):
        assert torch.equal(loss(pred, sigma, target, w), ref)
    assert torch.equal(loss(pred, sigma, target), loss(pred, sigma, target, torch.ones(4)))


def test_minimal_at_ground_truth_for_fixed_sigma():
    _, target, sigma, weight = _data(2)
    loss = LaplacianKeypointLoss()
    at_gt = loss(target, sigma, target, weight)
    valid = weight > 0
    expected = (weight * torch.log(SQRT2 * sigma[..., 0]))[valid].sum() / weight[valid].sum()
    assert abs(at_gt.item() - expected.item()) < 1e-12
    for scale in (1e-3, 1e-2, 0.1, 1.0):
        off = target + scale * torch.randn_like(target)
        assert loss(off, sigma, target, weight) > at_gt
    # growing linearly with the error along a fixed direction
    direction = torch.randn_like(target)
    values = [loss(target + t * direction, sigma, target, weight).item() for t in (0, 1, 2, 3)]
    assert values[0] < values[1] < values[2] < values[3]
    assert abs((values[3] - values[2]) - (values[2] - values[1])) < 1e-10


def test_sigma_optimum():
    """For a fixed error e the loss is minimised at sigma = sqrt(2) * mean_d |e_d|."""
    error = torch.tensor([[[0.03, -0.01, 0.05]]], dtype=torch.float64)
    target = torch.zeros_like(error)
    mean_abs = error.abs().mean().item()
    loss = LaplacianKeypointLoss()
    sigmas = torch.linspace(0.005, 0.2, 4001, dtype=torch.float64)
    values = torch.stack([loss(error, s.view(1, 1, 1), target) for s in sigmas])
    best = sigmas[values.argmin()].item()
    assert abs(best - SQRT2 * mean_abs) < 1e-4
    s_opt = torch.tensor([[[SQRT2 * mean_abs]]], dtype=torch.float64, requires_grad=True)
    value = loss(error, s_opt, target)
    value.backward()
    assert abs(s_opt.grad.item()) < 1e-10
    assert abs(value.item() - (math.log(2 * mean_abs) + 1)) < 1e-12


def test_gradients_finite_at_ground_truth():
    _, target, sigma, weight = _data(3)
    pred = target.clone().requires_grad_(True)
    sigma = sigma.clone().requires_grad_(True)
    LaplacianKeypointLoss()(pred, sigma, target, weight).backward()
    assert torch.isfinite(pred.grad).all() and torch.isfinite(sigma.grad).all()
    # d/dsigma of log(sqrt(2) sigma) alone is w / (sigma * sum(w)) at zero error
    valid = weight > 0
    expected = weight / sigma.detach()[..., 0] / weight[valid].sum()
    torch.testing.assert_close(sigma.grad[..., 0], torch.where(valid, expected, 0.0))


def test_masked_samples_contribute_nothing():
    pred, target, sigma, weight = _data(4)
    weight[1] = 0.0  # sample 1 entirely masked
    loss = LaplacianKeypointLoss()

    def run(p, t, s):
        p = p.clone().requires_grad_(True)
        s = s.clone().requires_grad_(True)
        value = loss(p, s, t, weight)
        value.backward()
        return value.detach(), p.grad, s.grad

    ref = run(pred, target, sigma)
    pred2, target2, sigma2 = pred.clone(), target.clone(), sigma.clone()
    pred2[1] += 100.0
    target2[1] = float('nan')  # e.g. a missing annotation
    sigma2[1] = -1.0  # even a broken sigma there is ignored
    got = run(pred2, target2, sigma2)
    assert torch.equal(got[0], ref[0])
    assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
    assert (got[1][1] == 0).all() and (got[2][1] == 0).all()


def test_all_masked_gives_zero_without_nan():
    pred, target, sigma, _ = _data(5)
    pred.requires_grad_(True)
    target[:] = float('nan')
    value = LaplacianKeypointLoss()(pred, sigma, target, torch.zeros(4, 6))
    value.backward()
    assert value.item() == 0.0 and (pred.grad == 0).all()


def test_bad_inputs_raise():
    pred, target, sigma, weight = _data(6)
    loss = LaplacianKeypointLoss()
    bad_sigma = sigma.clone()
    bad_sigma[0, 0] = 0.0  # weight[0, 0] > 0: an unmasked entry
    with pytest.raises(ValueError, match='sigma must be > 0 on unmasked'):
        loss(pred, bad_sigma, target, weight)
    with pytest.raises(ValueError, match=r'sigma must be \(B, K, 1\)'):
        loss(pred, sigma[:, :3], target, weight)
    with pytest.raises(ValueError, match='target_weight must be'):
        loss(pred, sigma, target, weight[:, :3])
    with pytest.raises(ValueError, match='reduction'):
        LaplacianKeypointLoss(reduction='avg')
