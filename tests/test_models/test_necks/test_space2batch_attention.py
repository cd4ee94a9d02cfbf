"""Uncertainty-guided attention (eq. 2) and Space2Batch equivalence."""
import math

import pytest
import torch
from einops import rearrange

import unspat_mm  # noqa: F401
from unspat_mm.models.necks import (UncertaintyGuidedAttention, UncertaintyGuidedTransformer,
                                    batch2space, same_position_mask, space2batch)


def _transformer(**kw):
    torch.manual_seed(0)
    return UncertaintyGuidedTransformer(embed_dims=32, num_heads=4, num_layers=3, **kw).eval()


def test_space2batch_equals_full_attention_with_same_position_mask():
    b, t, h, w, d = 2, 5, 3, 4, 32
    model = _transformer(gamma=2.5)
    x = torch.randn(b, t, h, w, d)
    u = torch.rand(b, t, h, w)
    enc, maps = model(space2batch(x), rearrange(u, 'b t h w -> (b h w) t'), return_attn=True)
    enc = batch2space(enc, b, h, w)
    full, full_maps = model(rearrange(x, 'b t h w d -> b (t h w) d'),
                            rearrange(u, 'b t h w -> b (t h w)'),
                            attn_mask=same_position_mask(t, h, w), return_attn=True)
    full = rearrange(full, 'b (t h w) d -> b t h w d', t=t, h=h)
    torch.testing.assert_close(enc, full, atol=1e-5, rtol=0)
    # Attention weights too: a_ij at position p is the full map at ((i, p), (j, p)).
    s2b = rearrange(maps[-1]['reweighted'], '(b h w) n q k -> b n q k h w', b=b, h=h)
    fm = rearrange(full_maps[-1]['reweighted'],
                   'b n (tq hq wq) (tk hk wk) -> b n tq tk hq wq hk wk', tq=t, hq=h, tk=t, hk=h)
    diag = torch.diagonal(torch.diagonal(fm, dim1=-4, dim2=-2), dim1=-3, dim2=-2)
    torch.testing.assert_close(s2b, diag, atol=1e-6, rtol=0)
    # ... and all of each query's attention stays at its own position.
    torch.testing.assert_close(diag.sum(dim=3), torch.ones_like(diag[:, :, :, 0]), atol=1e-6,
                               rtol=0)
    assert torch.equal(rearrange(space2batch(x), '(b h w) t d -> b t h w d', b=b, h=h), x)


@pytest.mark.parametrize('gamma,u_value', [(0.0, None), (3.0, 0.0)])
def test_zero_gamma_or_zero_uncertainty_is_plain_attention(gamma, u_value):
    model = _transformer(gamma=gamma)
    x = torch.randn(6, 7, 32)
    u = torch.rand(6, 7) if u_value is None else torch.full((6, 7), u_value)
    plain, _ = model(x, None)
    torch.testing.assert_close(model(x, u)[0], plain, atol=1e-6, rtol=0)


@pytest.mark.parametrize('gamma', [0.5, 2.0, 6.0])
def test_uncertain_key_weight_follows_closed_form(gamma):
    torch.manual_seed(1)
    attn = UncertaintyGuidedAttention(32, 4).eval()
    x = torch.randn(3, 6, 32)
    key = 2
    u = torch.zeros(3, 6)
    u[:, key] = 1.0
    _, maps = attn(x, key_penalty=-gamma * u, return_attn=True)
    a = maps['plain']  # e_j / sum(e) without the penalty
    e_k = a[..., key]
    expected = math.exp(-gamma) * e_k / (1 - e_k + math.exp(-gamma) * e_k)
    torch.testing.assert_close(maps['reweighted'][..., key], expected, atol=1e-6, rtol=0)
    # The other keys keep their relative weights.
    others = [j for j in range(6) if j != key]
    ratio = maps['reweighted'][..., others] / a[..., others]
    torch.testing.assert_close(ratio, ratio[..., :1].expand_as(ratio), atol=1e-5, rtol=0)


def test_returned_maps_are_the_weights_sdpa_used():
    torch.manual_seed(2)
    attn = UncertaintyGuidedAttention(32, 4).eval()
    x = torch.randn(2, 5, 32)
    penalty = -1.7 * torch.rand(2, 5)
    out, maps = attn(x, penalty, return_attn=True)
    v = rearrange(attn.qkv(x), 'n l (three h c) -> three n h l c', three=3, h=4)[2]
    manual = attn.proj(rearrange(maps['reweighted'] @ v, 'n h l c -> n l (h c)'))
    torch.testing.assert_close(out, manual, atol=1e-5, rtol=0)
    assert torch.equal(attn(x, penalty)[0], out)  # maps on request change nothing


def test_learnable_gamma_and_bad_mask():
    model = _transformer(gamma=1.0, learnable_gamma=True)
    assert isinstance(model.gamma, torch.nn.Parameter)
    model(torch.randn(4, 3, 32), torch.rand(4, 3))[0].square().sum().backward()
    assert model.gamma.grad is not None and model.gamma.grad.abs() > 0
    fixed = _transformer(gamma=1.0)
    assert 'gamma' not in dict(fixed.named_parameters())
    with pytest.raises(TypeError, match='bool'):
        fixed(torch.randn(1, 3, 32), attn_mask=torch.zeros(3, 3))
    with pytest.raises(ValueError, match='divisible'):
        UncertaintyGuidedAttention(30, 4)
