"""SAM: identity, realignment of known shifts/zooms, gradients, learnability."""
import pytest
import torch
import torch.nn.functional as F

import unspat_mm  # noqa: F401
from unspat_mm.models.necks import SpatialAlignment, make_sampling_grid, warp_features
from unspat_mm.models.necks.spatial_alignment import GEMM_MAX_PADDED_POSITIONS


def _identity(n):
    return torch.tensor([1.0, 0.0, 0.0]).repeat(n, 1)


@pytest.mark.parametrize('size', [(8, 8), (16, 16), (4, 8)])
def test_identity_warp_is_exact_noop(size):
    x = torch.randn(3, 5, *size)
    assert torch.equal(warp_features(x, _identity(3)), x)


def test_sam_at_init_is_exact_noop_and_reports_identity():
    torch.manual_seed(0)
    sam = SpatialAlignment(16, (8, 8))
    feats = torch.randn(2, 5, 16, 8, 8)
    aligned, params = sam(feats)
    assert torch.equal(aligned, feats)
    assert torch.equal(params, _identity(10).view(2, 5, 3))


def test_grid_matches_affine_grid_convention():
    params = torch.tensor([[1.3, 0.2, -0.4], [0.7, -0.1, 0.25]])
    theta = torch.zeros(2, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = params[:, 0]
    theta[:, :, 2] = params[:, 1:]
    ref = F.affine_grid(theta, (2, 1, 6, 10), align_corners=False)
    torch.testing.assert_close(make_sampling_grid(params, (6, 10)), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize('kx,ky', [(2, 1), (-1, 3), (0, -2)])
def test_inverse_shift_realigns(kx, ky):
    """adj[y, x] = cur[y - ky, x - kx]: the content moved (kx, ky) cells; the
    documented inverse is tx = 2 kx / W, ty = 2 ky / H."""
    h, w, m = 8, 8, 4
    canvas = torch.randn(2, 6, h + 2 * m, w + 2 * m)
    cur = canvas[..., m:m + h, m:m + w]
    adj = canvas[..., m - ky:m - ky + h, m - kx:m - kx + w]
    params = torch.tensor([[1.0, 2 * kx / w, 2 * ky / h]]).repeat(2, 1)
    out = warp_features(adj, params)
    ys = slice(max(0, -ky), h - max(0, ky))
    xs = slice(max(0, -kx), w - max(0, kx))
    assert (out - cur)[..., ys, xs].abs().max() < 1e-5
    # Off the interior the sample falls outside the map and reads zeros.
    if kx > 0:
        assert torch.all(out[..., :, w - kx:] == 0)


def test_inverse_scale_and_shift_realign_affine_content():
    """Bilinear sampling is exact for content affine in the coordinates, so a
    zoomed-and-shifted copy realigns everywhere its samples stay inside."""
    h, w = 8, 8
    s, tx, ty = 0.8, 0.1, -0.15
    xs = (2 * torch.arange(w) + 1) / w - 1
    ys = (2 * torch.arange(h) + 1) / h - 1
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    a, b, c = torch.randn(3, 4, 1, 1)
    cur = (a * gx + b * gy + c)[None]
    adj = (a * (gx - tx) / s + b * (gy - ty) / s + c)[None]  # adj(q) = cur((q - t) / s)
    out = warp_features(adj, torch.tensor([[s, tx, ty]]))
    inside = ((s * gx + tx).abs() <= 1 - 1 / w) & ((s * gy + ty).abs() <= 1 - 1 / h)
    assert inside.sum() >= 30
    assert (out - cur)[..., inside].abs().max() < 1e-5


def test_gradients_reach_s_tx_ty():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.double)
    params = torch.tensor([[1.1, 0.13, -0.07], [0.9, -0.21, 0.11]], dtype=torch.double,
                          requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: warp_features(x, p), (params, ))
    warp_features(x, params).square().sum().backward()
    assert torch.all(params.grad.abs() > 1e-6)
    # Through the module: the zero-initialised last FC still gets a gradient.
    sam = SpatialAlignment(8, (8, 8))
    aligned, _ = sam(torch.randn(2, 3, 8, 8, 8))
    aligned.square().sum().backward()
    assert sam.fc2.weight.grad.abs().sum() > 0 and sam.fc2.bias.grad.abs().sum() > 0


def test_middle_frame_untouched_and_t1():
    torch.manual_seed(0)
    sam = SpatialAlignment(8, (8, 8))
    torch.nn.init.normal_(sam.fc2.weight, std=0.1)
    feats = torch.randn(2, 4, 8, 8, 8)
    aligned, params = sam(feats)
    assert torch.equal(aligned[:, 2], feats[:, 2])
    assert torch.equal(params[:, 2], _identity(2))
    assert not torch.allclose(aligned[:, 0], feats[:, 0])
    single = feats[:, :1]
    out, p = sam(single)
    assert out is single and torch.equal(p, _identity(2).view(2, 1, 3))


@pytest.mark.parametrize('h, w', [(5, 6), (19, 17)])  # the GEMM; the per-offset products
def test_correlation_volume_is_cosine_similarity_at_each_offset(h, w):
    torch.manual_seed(0)
    k = 2
    assert ((h + 2 * k) * (w + 2 * k) <= GEMM_MAX_PADDED_POSITIONS) == (h == 5)
    sam = SpatialAlignment(7, (h, w), max_displacement=k)
    cur, adj = torch.randn(2, 2, 7, h, w)
    corr = sam.correlation(cur, adj)
    assert corr.shape == (2, (2 * k + 1)**2, h, w)
    for (y, x), (dy, dx) in [((0, 0), (0, 0)), ((2, 3), (1, -2)), ((4, 5), (-2, 1)),
                             ((1, 4), (2, 2))]:
        d = (dy + k) * (2 * k + 1) + (dx + k)
        yy, xx = y + dy, x + dx
        inside = 0 <= yy < h and 0 <= xx < w
        ref = F.cosine_similarity(cur[:, :, y, x], adj[:, :, yy, xx], dim=1) if inside \
            else torch.zeros(2)
        torch.testing.assert_close(corr[:, d, y, x], ref, atol=1e-6, rtol=0)
    # every offset at every position, against shifted copies of the adjacent map
    unit_cur, unit_adj = F.normalize(cur, dim=1), F.normalize(adj, dim=1)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            shifted = torch.zeros_like(unit_adj)
            shifted[:, :, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)] = \
                unit_adj[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)]
            d = (dy + k) * (2 * k + 1) + (dx + k)
            torch.testing.assert_close(corr[:, d], (unit_cur * shifted).sum(1), atol=1e-6,
                                       rtol=0)


def test_wrong_feature_size_is_explained():
    sam = SpatialAlignment(8, (8, 8))
    with pytest.raises(ValueError, match='feat_size'):
        sam(torch.randn(1, 3, 8, 6, 6))


def test_sam_learns_known_shifts(one_thread):
    """The correlation volume carries the motion: trained briefly to align
    shifted copies, SAM predicts the shift (error << the 1.2-cell mean shift)."""
    torch.manual_seed(0)
    c, h, w, m = 16, 8, 8, 4
    sam = SpatialAlignment(c, (h, w), max_displacement=2, hidden_channels=64)
    opt = torch.optim.Adam(sam.parameters(), 1e-3)

    def batch(n):
        canvas = F.avg_pool2d(torch.randn(n, c, h + 2 * m, w + 2 * m), 3, 1, 1)
        k = torch.randint(-2, 3, (n, 2))
        adj = torch.stack([canvas[i, :, m - ky:m - ky + h, m - kx:m - kx + w]
                           for i, (kx, ky) in enumerate(k.tolist())])
        return canvas[..., m:m + h, m:m + w], adj, k

    for _ in range(200):
        cur, adj, _ = batch(32)
        loss = (warp_features(adj, sam.predict_params(cur, adj)) - cur)[..., 2:-2, 2:-2]
        opt.zero_grad()
        loss.square().mean().backward()
        opt.step()
    cur, adj, k = batch(256)
    with torch.no_grad():
        params = sam.predict_params(cur, adj)
    err_cells = (params[:, 1:] * torch.tensor([w / 2, h / 2]) - k).abs().mean()
    assert err_cells < 0.3, err_cells
    assert (params[:, 0] - 1).abs().max() < 0.1
