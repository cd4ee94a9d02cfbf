import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from unspat_mm.models.utils import (any_perpendicular, axis_angle_to_matrix, geodesic_distance,
                                    matrix_to_axis_angle, matrix_to_rotation_6d,
                                    rotation_6d_to_matrix, rotation_about_axis, safe_normalize,
                                    skew)


def _unit(n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n, 3, generator=g, dtype=dtype)
    return v / v.norm(dim=-1, keepdim=True)


def _same_rotation_vector(aa, aa2):
    """Axis-angle distance, treating the two equal half-turns at angle pi as the same."""
    return torch.minimum((aa - aa2).norm(dim=-1), (aa + aa2).norm(dim=-1))


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 2e-6), (torch.float64, 1e-7)])
def test_axis_angle_matrix_matches_scipy(dtype, tol):
    aa = _unit(500, dtype) * torch.linspace(0, 3.1, 500, dtype=dtype)[:, None]
    rot = axis_angle_to_matrix(aa)
    expected = Rotation.from_rotvec(aa.double().numpy()).as_matrix()
    np.testing.assert_allclose(rot.double().numpy(), expected, atol=tol)
    np.testing.assert_allclose(
        matrix_to_axis_angle(torch.from_numpy(expected).to(dtype)).double().numpy(),
        aa.double().numpy(), atol=10 * tol)


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 2e-6), (torch.float64, 1e-7)])
@pytest.mark.parametrize('angle', [0.0, 1e-9, 1e-6, 1e-3, 0.5, 2.0, math.pi - 1e-3,
                                   math.pi - 1e-5, math.pi])
def test_round_trip_near_zero_and_pi(angle, dtype, tol):
    aa = _unit(200, dtype, seed=1) * angle
    aa2 = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    assert _same_rotation_vector(aa, aa2).max() < tol
    # relative accuracy for tiny angles (no catastrophic cancellation near 0)
    if 0 < angle < 1e-3:
        assert ((aa2.norm(dim=-1) - angle).abs() / angle).max() < 1e-4


def test_axis_angle_shapes_and_errors():
    aa = torch.zeros(2, 5, 24, 3)
    assert axis_angle_to_matrix(aa).shape == (2, 5, 24, 3, 3)
    assert torch.equal(axis_angle_to_matrix(aa), torch.eye(3).expand(2, 5, 24, 3, 3))
    with pytest.raises(ValueError, match=r'\(\.\.\., 3\)'):
        axis_angle_to_matrix(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r'\(\.\.\., 3, 3\)'):
        matrix_to_axis_angle(torch.zeros(4, 3))


def test_matrix_to_axis_angle_gradients_finite_at_0_and_pi():
    aa = torch.tensor([[0., 0, 0], [1e-8, 0, 0], [math.pi, 0, 0], [0, 0, -math.pi],
                       [1.0, 2.0, 0.5]])
    rot = axis_angle_to_matrix(aa).requires_grad_()
    matrix_to_axis_angle(rot).square().sum().backward()
    assert torch.isfinite(rot.grad).all()


def test_geodesic_distance_closed_form():
    rot1 = axis_angle_to_matrix(_unit(300, torch.float64, seed=2) * 2.0)
    angles = torch.linspace(0, math.pi, 300, dtype=torch.float64)
    rel = axis_angle_to_matrix(_unit(300, torch.float64, seed=3) * angles[:, None])
    # closed form: the angle of rot1^T rot2 where rot2 = rot1 @ rel is |rel's angle|
    dist = geodesic_distance(rot1, rot1 @ rel)
    np.testing.assert_allclose(dist.numpy(), angles.numpy(), atol=1e-7)
    # and it is symmetric and matches scipy's magnitude of the relative rotation
    np.testing.assert_allclose(geodesic_distance(rot1 @ rel, rot1).numpy(), angles.numpy(),
                               atol=1e-7)
    # two rotations about the same axis: |a - b| wrapped to [0, pi]. (Built with
    # rotation_about_axis: batch_rodrigues adds 1e-8 to the vector before its norm.)
    axis = _unit(1, torch.float64, seed=4)
    a, b = torch.tensor([2.5], dtype=torch.float64), torch.tensor([-2.0], dtype=torch.float64)
    d = geodesic_distance(rotation_about_axis(axis, a.cos(), a.sin()),
                          rotation_about_axis(axis, b.cos(), b.sin()))
    assert abs(d.item() - (2 * math.pi - 4.5)) < 1e-12
    # accurate for tiny angles in float32, where acos of the trace would return 0
    tiny = torch.tensor([1e-5])
    rot = rotation_about_axis(torch.tensor([[0., 0.6, 0.8]]), tiny.cos(), tiny.sin())
    assert abs(geodesic_distance(torch.eye(3), rot).item() - 1e-5) < 1e-10


def test_geodesic_distance_gradient_finite_for_identical_and_opposite_inputs():
    rot = axis_angle_to_matrix(_unit(4, torch.float32) * 1.3)
    half_turn = axis_angle_to_matrix(_unit(4, torch.float32, seed=5) * math.pi)
    r1 = rot.clone().requires_grad_()
    r2 = torch.cat([rot[:2], rot[2:] @ half_turn[2:]]).requires_grad_()
    dist = geodesic_distance(r1, r2)
    assert dist[:2].abs().max() < 1e-6 and (dist[2:] - math.pi).abs().max() < 1e-5
    dist.sum().backward()
    assert torch.isfinite(r1.grad).all() and torch.isfinite(r2.grad).all()


def test_rotation_about_axis_matches_axis_angle():
    axis = _unit(100, torch.float64, seed=6) * 0.37  # not unit: normalised inside
    angle = torch.linspace(-3, 3, 100, dtype=torch.float64)
    rot = rotation_about_axis(axis, angle.cos(), angle.sin())
    expected = axis_angle_to_matrix(axis / 0.37 * angle[:, None])
    np.testing.assert_allclose(rot.numpy(), expected.numpy(), atol=1e-7)
    # a zero axis gives the identity, with finite gradients
    zero = torch.zeros(1, 3, requires_grad=True)
    ident = rotation_about_axis(zero, torch.tensor([0.3]), torch.tensor([0.9]))
    assert torch.equal(ident, torch.eye(3)[None])
    ident.sum().backward()
    assert torch.isfinite(zero.grad).all()
    with pytest.raises(ValueError, match='batch shape'):
        rotation_about_axis(axis, angle[:5].cos(), angle[:5].sin())


def test_helpers():
    v = _unit(50, torch.float64, seed=7)
    np.testing.assert_allclose((skew(v) @ v.flip(0)[..., None])[..., 0].numpy(),
                               torch.linalg.cross(v, v.flip(0)).numpy(), atol=1e-12)
    perp = any_perpendicular(v)
    assert (perp * v).sum(-1).abs().max() < 1e-12
    assert (perp.norm(dim=-1) - 1).abs().max() < 1e-12
    x = torch.tensor([[0., 0, 0], [3., 0, 4]], requires_grad=True)
    out = safe_normalize(x, fallback=torch.tensor([0., 1, 0]))
    assert torch.allclose(out, torch.tensor([[0., 1, 0], [0.6, 0, 0.8]]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad[0], torch.zeros(3))


def test_rotation_6d_round_trip_and_gram_schmidt():
    rot = torch.as_tensor(Rotation.random(200, random_state=0).as_matrix())
    six = torch.cat([rot[..., 0], rot[..., 1]], dim=-1)
    assert torch.equal(matrix_to_rotation_6d(rot), six)
    torch.testing.assert_close(rotation_6d_to_matrix(six), rot, atol=1e-12, rtol=0)
    # a batch of 3 (where a cross product without dim would take the batch axis)
    torch.testing.assert_close(rotation_6d_to_matrix(six[:3]), rot[:3], atol=1e-12, rtol=0)
    # any input: a scaled first column, a second one with a component along it
    scaled = torch.cat([rot[..., 0] * 3.0, rot[..., 1] * 0.5 + rot[..., 0] * 2.0], dim=-1)
    torch.testing.assert_close(rotation_6d_to_matrix(scaled), rot, atol=1e-12, rtol=0)
    # degenerate inputs (zero, parallel vectors) still give rotations, without NaN
    odd = torch.tensor([[0.] * 6, [1., 0, 0, 2., 0, 0]], dtype=torch.float64)
    out = rotation_6d_to_matrix(odd)
    torch.testing.assert_close(out.transpose(-1, -2) @ out,
                               torch.eye(3, dtype=odd.dtype).expand(2, 3, 3))
    torch.testing.assert_close(torch.linalg.det(out), torch.ones(2, dtype=odd.dtype))
    with pytest.raises(ValueError, match='x'):
        rotation_6d_to_matrix(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r'rot must have shape \(\.\.\., 3, 3\)'):
        matrix_to_rotation_6d(torch.zeros(2, 3))
