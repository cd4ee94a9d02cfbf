import math

import pytest
import torch

from unspat_mm.models.heads import semi_perspective_projection, soft_argmax_3d


def test_one_hot_heatmap_gives_its_cell_centre_exactly():
    d, h, w = 4, 6, 8
    logits = torch.full((2, 3, d, h, w), -math.inf)
    cells = [[(0, 0, 0), (3, 5, 7), (1, 2, 5)], [(2, 4, 1), (0, 5, 0), (3, 0, 7)]]
    for b, row in enumerate(cells):
        for k, (z, y, x) in enumerate(row):
            logits[b, k, z, y, x] = 0.0
    coords = soft_argmax_3d(logits)
    for b, row in enumerate(cells):
        for k, (z, y, x) in enumerate(row):
            expected = torch.tensor([(x + .5) / w - .5, (y + .5) / h - .5, (z + .5) / d - .5])
            torch.testing.assert_close(coords[b, k], expected, rtol=0, atol=1e-7)


def test_soft_argmax_is_the_expectation_and_differentiable():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 1, 3, 4, 5, generator=g, requires_grad=True)
    coords = soft_argmax_3d(logits)[0, 0]
    prob = logits.detach()[0, 0].flatten().softmax(0).reshape(3, 4, 5)
    zz, yy, xx = torch.meshgrid(torch.arange(3.), torch.arange(4.), torch.arange(5.),
                                indexing='ij')
    expected = torch.stack([((xx + .5) / 5 - .5).mul(prob).sum(), ((yy + .5) / 4 - .5).mul(prob)
                            .sum(), ((zz + .5) / 3 - .5).mul(prob).sum()])
    torch.testing.assert_close(coords.detach(), expected, rtol=0, atol=1e-6)
    coords.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_semi_perspective_matches_pinhole_and_tends_to_weak_perspective():
    points = torch.tensor([[[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]]])
    camera = torch.tensor([[0.5, 0.05, -0.1]])
    focal = 4.0
    depth = focal / 0.5  # the root's distance from the camera
    uv = semi_perspective_projection(points, camera, focal)
    expected = focal * (points[..., :2] + camera[:, None, 1:]) / (depth + points[..., 2:])
    torch.testing.assert_close(uv, expected)
    weak = semi_perspective_projection(points, camera, focal=1e9)
    torch.testing.assert_close(weak, 0.5 * (points[..., :2] + camera[:, None, 1:]))
    assert not torch.allclose(uv, weak)


@pytest.mark.parametrize('shape', [(1, 29, 2), (29, 3), (2, 29, 3)])
def test_projection_refuses_mismatched_shapes(shape):
    with pytest.raises(ValueError, match=r'points \(B, K, 3\) and camera \(B, 3\)'):
        semi_perspective_projection(torch.zeros(shape), torch.zeros(1, 3), 4.0)
