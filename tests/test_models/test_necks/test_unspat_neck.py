"""UNSPATNeck: paper configuration, ablation flags, input conventions."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

import unspat_mm  # noqa: F401
from unspat_mm.models.necks import UNSPATNeck, UNSPATNeckOutput
from unspat_mm.registry import MODELS

SMALL = dict(in_channels=32, num_frames=5, feat_size=(4, 4), num_layers=2, num_heads=4,
             drop_rate=0.0, sam_cfg=dict(hidden_channels=16),
             uncertainty_cfg=dict(hidden_channels=16, artifact_ratio=0.2))


def _neck(**kw):
    torch.manual_seed(0)
    return MODELS.build(dict(type='UNSPATNeck', **{**SMALL, **kw}))


def test_paper_configuration_parameter_count():
    neck = MODELS.build(dict(type='UNSPATNeck'))  # C=512, T=16, 8x8, 3 layers, 8 heads
    d, hw, r, hid_sam, hid_u = 512, 64, 2, 256, 64
    sam = 25 * hw * hid_sam + hid_sam + hid_sam * 3 + 3
    estimator = 2 * d * hid_u + hid_u + hid_u * hid_u * 9 + hid_u + hid_u + 1
    layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (2 * r * d * d + r * d + d)
    expected = sam + estimator + 3 * layer + 16 * d + hw * d + 2 * d
    count = sum(p.numel() for p in neck.parameters())
    print(f'\nUNSPATNeck paper configuration: {count:,} parameters '
          f'(SAM {sam:,}, estimator {estimator:,}, transformer {3 * layer:,})')
    assert count == expected


@pytest.mark.parametrize('attention,use_sam,use_unc', list(
    itertools.product(('space2batch', 'full', 'gap_temporal'), (True, False), (True, False))))
def test_every_ablation_builds_trains_and_evaluates(attention, use_sam, use_unc):
    neck = _neck(attention=attention, use_sam=use_sam, use_uncertainty=use_unc)
    clip = torch.randn(3, 5, 32, 4, 4)
    out = neck.train()(clip)
    assert isinstance(out, UNSPATNeckOutput) and out.feats.shape == (3, 32, 4, 4)
    assert (out.sam_params is not None) == use_sam and (out.uncertainty is not None) == use_unc
    assert set(out.losses) == ({'loss_uncertainty'} if use_unc else set())
    (out.feats.square().mean() + sum(out.losses.values(), torch.tensor(0.))).backward()
    grads = [p.grad for p in neck.transformer.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    neck.eval()
    with torch.no_grad():
        a, b = neck(clip), neck(clip)
    assert torch.equal(a.feats, b.feats) and a.artifact_mask is None and not a.losses


def test_space2batch_only_mixes_time_at_the_same_position():
    """Without SAM/estimator (which mix neighbours), a change of frame 0 at one
    position reaches the middle frame only there with Space2Batch, everywhere
    with full attention, and everywhere (through the pooled token) with GAP."""
    clip = torch.randn(2, 5, 32, 4, 4)
    moved = clip.clone()
    moved[:, 0, :, 1, 2] += 3.0 * torch.randn(32)  # not constant: LayerNorm would hide it
    for attention in ('space2batch', 'full', 'gap_temporal'):
        neck = _neck(attention=attention, use_sam=False, use_uncertainty=False).eval()
        with torch.no_grad():
            diff = (neck(moved).feats - neck(clip).feats).abs().amax(dim=(0, 1))
        assert diff[1, 2] > 1e-4, attention
        others = torch.ones(4, 4, dtype=torch.bool)
        others[1, 2] = False
        if attention == 'space2batch':
            assert diff[others].max() == 0
        else:  # measured 6e-4 (full, near-uniform attention over 80 tokens), 4e-3 (gap)
            assert diff[others].min() > 1e-4, attention


def test_uncertainty_training_signal_is_consistent():
    neck = _neck(use_sam=False).train()
    out = neck(torch.randn(4, 5, 32, 4, 4))
    assert out.artifact_mask.shape == (4, 5, 4, 4) and 0 < out.artifact_mask.mean() < 1
    torch.testing.assert_close(out.losses['loss_uncertainty'],
                               F.binary_cross_entropy(out.uncertainty, out.artifact_mask))


@pytest.mark.parametrize('corrupt', [True, False])
def test_artifacts_reach_the_transformer_only_if_configured(corrupt):
    """gamma = 0 removes U from the attention; then the training-mode output
    differs from the eval-mode one only through corrupted transformer input."""
    neck = _neck(use_sam=False, gamma=0.0, corrupt_transformer_input=corrupt)
    clip = torch.randn(4, 5, 32, 4, 4)
    with torch.no_grad():
        train_out = neck.train()(clip).feats
        eval_out = neck.eval()(clip).feats
    assert torch.allclose(train_out, eval_out, atol=1e-6) != corrupt


@pytest.mark.parametrize('detach', [True, False])
def test_detach_uncertainty(detach):
    neck = _neck(use_sam=False, gamma=2.0, detach_uncertainty=detach,
                 corrupt_transformer_input=False).train()
    neck(torch.randn(4, 5, 32, 4, 4)).feats.square().sum().backward()
    grad = sum(p.grad.abs().sum() for p in neck.estimator.parameters() if p.grad is not None)
    assert (grad == 0) == detach


def test_single_frame_clip():
    neck = _neck(gamma=5.0).eval()
    clip = torch.randn(2, 1, 32, 4, 4)
    out = neck(clip, return_attention=True)
    assert out.feats.shape == (2, 32, 4, 4)
    assert torch.equal(out.sam_params, torch.tensor([1., 0, 0]).expand(2, 1, 3))
    assert torch.equal(out.attn_maps[0]['reweighted'], torch.ones(2, 4, 1, 1, 4, 4))
    # One key: U cannot change anything.
    neck.transformer.gamma.fill_(0.0)
    assert torch.allclose(neck(clip).feats, out.feats, atol=1e-6)
    torch.testing.assert_close(neck._temporal_pos(1), neck.temporal_embed[2:3])
    torch.testing.assert_close(neck._temporal_pos(3), neck.temporal_embed[1:4])


def test_attention_maps_on_request():
    clip = torch.randn(2, 5, 32, 4, 4)
    shapes = dict(space2batch=(2, 4, 5, 5, 4, 4), full=(2, 4, 5, 4, 4, 5, 4, 4),
                  gap_temporal=(2, 4, 5, 5))
    for attention, shape in shapes.items():
        neck = _neck(attention=attention).eval()
        out = neck(clip, return_attention=True)
        assert len(out.attn_maps) == 2
        assert torch.equal(neck(clip).feats, out.feats) and neck(clip).attn_maps is None
        for kind in ('reweighted', 'plain'):
            m = out.attn_maps[0][kind]
            assert m.shape == shape
        if attention == 'space2batch':
            torch.testing.assert_close(m.sum(3), torch.ones(2, 4, 5, 4, 4))
            # eq. 2 shifts weight away from uncertain keys.
            rw, pl = out.attn_maps[0]['reweighted'], out.attn_maps[0]['plain']
            u = rearrange(out.uncertainty, 'b k h w -> b 1 1 k h w')
            assert ((rw / pl) * torch.exp(u)).std(dim=3).max() < 1e-4  # gamma = 1


def test_mmpose_tuple_input():
    neck = _neck(num_frames=5).eval()
    other = torch.randn(10, 8, 8, 8)
    images = torch.randn(10, 32, 4, 4)  # N = B * T, frames of a clip consecutive
    out = neck((other, images))
    assert isinstance(out, tuple) and out[0] is other and out[1].shape == (10, 32, 4, 4)
    clip = neck.forward_clip(rearrange(images, '(b t) c h w -> b t c h w', t=5),
                             output_frames='all').feats
    torch.testing.assert_close(out[1], rearrange(clip, 'b t d h w -> (b t) d h w'))
    assert torch.equal(neck((rearrange(images, '(b t) c h w -> b t c h w', t=5), ))[0],
                       clip[:, 2])
    with pytest.raises(ValueError, match='multiple of num_frames'):
        neck((torch.randn(7, 32, 4, 4), ))
    with pytest.raises(ValueError, match='wrap'):
        neck(images)
    with pytest.raises(ValueError, match="output_frames='middle'"):
        _neck(output_frames='middle')((images, ))
    with pytest.warns(UserWarning, match='BCE loss cannot reach'):
        neck.train()((images, ))


def test_bad_inputs_are_explained():
    neck = _neck()
    with pytest.raises(ValueError, match='feat_size'):
        neck(torch.randn(2, 5, 32, 8, 8))
    with pytest.raises(ValueError, match='in_channels'):
        neck(torch.randn(2, 5, 16, 4, 4))
    with pytest.raises(ValueError, match='raise num_frames'):
        neck(torch.randn(2, 6, 32, 4, 4))
    with pytest.raises(ValueError, match='attention must be one of'):
        UNSPATNeck(attention='axial')


def test_embed_dims_projection():
    neck = _neck(embed_dims=64).eval()
    assert neck(torch.randn(2, 5, 32, 4, 4)).feats.shape == (2, 64, 4, 4)
    out = _neck(output_frames='all').eval()(torch.randn(2, 3, 32, 4, 4))
    assert out.feats.shape == (2, 3, 32, 4, 4)
