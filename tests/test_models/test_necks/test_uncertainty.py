"""Synthetic artifacts (paper Fig. 2) and the uncertainty estimator."""
import time

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import mannwhitneyu

import unspat_mm  # noqa: F401
from unspat_mm.models.necks import (UncertaintyEstimator, make_synthetic_artifacts,
                                    sample_artifact_mask)
from unspat_mm.models.necks.uncertainty import temporal_median


def test_mask_marks_exactly_the_swapped_positions():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(4, 6, 8, 8, 8)
    out, mask, donor = make_synthetic_artifacts(feats, 0.3, 2, generator=g)
    assert torch.all(donor != torch.arange(4))
    m = mask.bool().unsqueeze(2).expand_as(feats)
    assert torch.equal(out[m], feats[donor][m])
    assert torch.equal(out[~m], feats[~m])
    # Random features: a swapped position always differs from the original.
    changed = (out != feats).any(dim=2)
    assert torch.equal(changed, mask.bool())
    assert 0 < mask.mean() < 1


@pytest.mark.parametrize('ratio,patch', [(0.0, 2), (0.15, 1), (0.3, 2), (0.5, 3), (1.0, 2)])
def test_mask_ratio_and_patches(ratio, patch):
    g = torch.Generator().manual_seed(1)
    mask = sample_artifact_mask(400, 4, (8, 8), ratio, patch, generator=g)
    assert mask.shape == (400, 4, 8, 8) and mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - ratio) < 0.02
    if patch > 1 and 0 < ratio < 1:
        # Patches, not isolated cells: most marked cells have a marked 4-neighbour.
        m = F.pad(mask.float().flatten(0, 1)[:, None], (1, 1, 1, 1))
        nb = F.conv2d(m, torch.tensor([[[[0., 1, 0], [1, 0, 1], [0, 1, 0]]]]))[:, 0]
        assert (nb[mask.flatten(0, 1)] > 0).float().mean() > 0.95


def test_bad_artifact_arguments_are_explained():
    with pytest.raises(ValueError, match='at least 2 clips'):
        make_synthetic_artifacts(torch.randn(1, 4, 8, 4, 4), 0.1, 2)
    with pytest.raises(ValueError, match='ratio'):
        sample_artifact_mask(2, 2, (4, 4), 1.5, 2)
    est = UncertaintyEstimator(8)
    with pytest.warns(UserWarning, match='batch of 1 clip'):
        x, mask = est.corrupt(torch.randn(1, 3, 8, 4, 4))
    assert mask.sum() == 0


def test_loss_is_bce_on_logits():
    est = UncertaintyEstimator(8)
    feats = torch.randn(2, 4, 8, 6, 6)
    logits = est(feats)
    assert logits.shape == (2, 4, 6, 6)
    mask = (torch.rand(2, 4, 6, 6) < 0.3).float()
    torch.testing.assert_close(est.loss(logits, mask),
                               F.binary_cross_entropy_with_logits(logits, mask))


def _clips(n, t, c, h, w, noise=0.1):
    """Coherent clips: one random map per clip plus small per-frame noise."""
    return torch.randn(n, 1, c, h, w) + noise * torch.randn(n, t, c, h, w)


def test_estimator_learns_to_find_artifacts(one_thread):
    torch.manual_seed(0)
    start = time.time()
    c, t, h, w = 32, 8, 8, 8
    est = UncertaintyEstimator(c, hidden_channels=32, artifact_ratio=0.15,
                               artifact_patch_size=2)
    opt = torch.optim.Adam(est.parameters(), 2e-3)
    for _ in range(600):
        x, mask = est.corrupt(_clips(8, t, c, h, w))
        loss = est.loss(est(x), mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    est.eval()
    with torch.no_grad():
        x, mask = est.corrupt(_clips(16, t, c, h, w))
        u = est(x).sigmoid()
    assert u.min() >= 0 and u.max() <= 1
    pos, neg = u[mask.bool()], u[~mask.bool()]
    auroc = mannwhitneyu(pos.numpy(), neg.numpy()).statistic / (pos.numel() * neg.numel())
    print(f'held-out AUROC {auroc:.4f} ({pos.numel()} swapped, {neg.numel()} clean), '
          f'final BCE {loss.item():.4f}, {time.time() - start:.1f}s')
    assert auroc > 0.9


@pytest.mark.parametrize('frames', [1, 2, 3, 7, 8, 15, 16, 17])
def test_inference_median_equals_torch_median(frames):
    """Without a gradient the sorting network gives torch.median's values bit for bit,
    ties and an even count (the lower middle value) included; with a gradient it is
    torch.median with its gradient."""
    gen = torch.Generator().manual_seed(frames)
    for feats in (torch.randn(2, frames, 5, 3, 4, generator=gen),
                  torch.randint(0, 3, (2, frames, 5, 3, 4), generator=gen).float()):
        expected = feats.median(dim=1, keepdim=True).values
        with torch.no_grad():
            assert torch.equal(temporal_median(feats), expected)
        assert torch.equal(temporal_median(feats.movedim(1, 3), dim=3),
                           expected.movedim(1, 3))
    leaf = torch.randn(1, frames, 2, 2, 2, generator=gen, requires_grad=True)
    temporal_median(leaf).sum().backward()
    picked = leaf.median(dim=1, keepdim=True).indices
    expected_grad = torch.zeros_like(leaf).scatter_(1, picked, 1.0)
    assert torch.equal(leaf.grad, expected_grad)
