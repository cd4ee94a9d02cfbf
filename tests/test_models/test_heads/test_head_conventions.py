"""IKMeshHead's two conventions, checked against their equations written out here:
'xyz' (the embedded default's head, unchanged) and 'hybrik' (HybrIK's uvd heatmaps,
camera, MLP and buffers)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unspat_mm.models.heads import IKMeshHead, semi_perspective_projection, soft_argmax_3d
from unspat_mm.models.heads.hybrik_convention import HYBRIK_FOCAL, HYBRIK_INIT_CAM, uvd_to_camera

SMALL = dict(in_channels=16, deconv_channels=(8, 8), depth_bins=6, fc_channels=(16, 12))


def build(standin_model_dir, **kwargs):
    torch.manual_seed(0)
    return IKMeshHead(body_model=dict(type='SMPLBodyModel', model_dir=standin_model_dir),
                      **{**SMALL, **kwargs})


def _randomise(head, seed):
    """Random values everywhere, so that the equations are tested off the initialisation."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in head.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if 'final_conv' in name else 0.3))
        for m in head.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        for name in ('init_shape', 'init_cam'):
            if hasattr(head, name):
                buf = getattr(head, name)
                buf.copy_(torch.randn(buf.shape, generator=g) * 0.1 + (0.9 if name == 'init_cam'
                                                                       else 0))
    return head.eval()


def _heatmap_logits(head, feats):
    out = head.final_conv(head.deconv(feats))
    b, _, h, w = out.shape
    return out.reshape(b, 29, head.depth_bins, h, w)


def _expected_coords(logits, positions):
    """E[position] of each axis under the joint softmax, positions(n) -> (n,)."""
    b, k, d, h, w = logits.shape
    prob = logits.reshape(b, k, -1).softmax(-1).reshape(b, k, d, h, w)
    zz, yy, xx = torch.meshgrid(positions(d), positions(h), positions(w), indexing='ij')
    return torch.stack([(prob * xx).sum((2, 3, 4)), (prob * yy).sum((2, 3, 4)),
                        (prob * zz).sum((2, 3, 4))], dim=-1)


def test_xyz_convention_is_the_metric_cube_head(standin_model_dir):
    head = _randomise(build(standin_model_dir), seed=1)
    feats = torch.randn(3, 16, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = head(feats, with_mesh=False)
        centres = _expected_coords(_heatmap_logits(head, feats),
                                   lambda n: (torch.arange(n) + 0.5) / n - 0.5)
        keypoints = centres * head.cube_size
        keypoints = keypoints - keypoints[:, :1]
        pooled = F.linear(F.relu(F.linear(feats.mean((2, 3)), head.mlp[0].weight,
                                          head.mlp[0].bias)), head.mlp[3].weight,
                          head.mlp[3].bias)  # Linear, ReLU, (Dropout), Linear, ReLU
        pooled = F.relu(pooled)
        raw_twist = F.linear(pooled, head.twist_fc.weight, head.twist_fc.bias).view(3, 23, 2)
        raw_camera = F.linear(pooled, head.camera_fc.weight, head.camera_fc.bias)
        camera = torch.cat([F.softplus(raw_camera[:, :1]), raw_camera[:, 1:]], 1)
        expected = dict(
            keypoints3d=keypoints, camera=camera,
            twist=raw_twist / raw_twist.norm(dim=-1, keepdim=True),
            betas=F.linear(pooled, head.beta_fc.weight, head.beta_fc.bias),
            sigma=torch.sigmoid(F.linear(pooled, head.sigma_fc.weight, head.sigma_fc.bias))
            + 1e-4,
            keypoints2d=semi_perspective_projection(keypoints, camera, 1000 / 256))
    for key, value in expected.items():
        torch.testing.assert_close(out[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert 'uvd' not in out
    assert [type(m) for m in head.mlp] == [nn.Linear, nn.ReLU, nn.Dropout] * 2
    # its state dict names are those of the checkpoints written before the switch
    assert sorted(k for k in head.state_dict() if not k.startswith('deconv.')) == sorted(
        f'{m}.{p}' for m in ('final_conv', 'mlp.0', 'mlp.3', 'twist_fc', 'beta_fc',
                             'camera_fc', 'sigma_fc') for p in ('weight', 'bias'))


def test_xyz_initialisation_starts_at_the_configured_camera(standin_model_dir):
    head = build(standin_model_dir, fc_channels=(), init_camera_scale=0.3).eval()
    out = head(torch.zeros(2, 16, 4, 4), with_mesh=False)
    torch.testing.assert_close(out['camera'], torch.tensor([[0.3, 0., 0.]] * 2))
    torch.testing.assert_close(out['sigma'], torch.full((2, 29), 1 / (1 + math.exp(2.2)) + 1e-4))
    torch.testing.assert_close(out['twist'], torch.tensor([1., 0.]).expand(2, 23, 2))


def test_hybrik_convention_is_hybriks_head(standin_model_dir):
    head = _randomise(build(standin_model_dir, convention='hybrik', cube_size=2.2), seed=3)
    feats = torch.randn(3, 16, 4, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = head(feats, with_mesh=False)
        uvd = _expected_coords(_heatmap_logits(head, feats), lambda n: torch.arange(n) / n - 0.5)
        xc = F.linear(F.linear(feats.mean((2, 3)), head.mlp[0].weight, head.mlp[0].bias),
                      head.mlp[2].weight, head.mlp[2].bias)  # fc1, fc2: no activation
        camera = F.linear(xc, head.camera_fc.weight, head.camera_fc.bias) + head.init_cam
        s, t = camera[:, None, :1], camera[:, None, 1:]
        z = uvd[..., 2:] * 2.2  # metres from the root's depth
        xy = uvd[..., :2] * 256 / 1000 * (z + 1000 / (256 * s)) - t
        keypoints = torch.cat([xy, z], -1)
        keypoints = keypoints - keypoints[:, :1]
        raw_twist = F.linear(xc, head.twist_fc.weight, head.twist_fc.bias).view(3, 23, 2)
        expected = dict(
            uvd=uvd, keypoints3d=keypoints, camera=camera,
            twist=raw_twist / raw_twist.norm(dim=-1, keepdim=True),
            betas=F.linear(xc, head.beta_fc.weight, head.beta_fc.bias) + head.init_shape,
            sigma=torch.sigmoid(F.linear(xc, head.sigma_fc.weight, head.sigma_fc.bias)),
            keypoints2d=semi_perspective_projection(keypoints, camera, 1000 / 256))
    for key, value in expected.items():
        torch.testing.assert_close(out[key], value, rtol=1e-5, atol=2e-6, msg=key)
    assert [type(m) for m in head.mlp] == [nn.Linear, nn.Dropout] * 2
    assert {'init_shape', 'init_cam'} <= set(head.state_dict())


def test_hybrik_initialisation(standin_model_dir):
    head = build(standin_model_dir, convention='hybrik').eval()
    torch.testing.assert_close(head.init_cam, torch.tensor(HYBRIK_INIT_CAM))
    assert torch.equal(head.init_shape, torch.zeros(10))
    # HybrIK's fresh heatmap branch: N(0, 1e-3) weights, zero bias
    assert head.final_conv.weight.std() < 2e-3 and torch.equal(head.final_conv.bias,
                                                               torch.zeros(29 * 6))
    out = head(torch.randn(2, 16, 4, 4), with_mesh=False)
    torch.testing.assert_close(out['camera'], torch.tensor([HYBRIK_INIT_CAM] * 2), atol=0.05,
                               rtol=0)
    torch.testing.assert_close(out['sigma'], torch.full((2, 29), 1 / (1 + math.exp(2.2))),
                               atol=0.02, rtol=0)


def test_back_projection_inverts_the_camera():
    """HybrIK's camera: the camera-frame points projected again give back (u, v)."""
    g = torch.Generator().manual_seed(5)
    uvd = torch.rand(4, 29, 3, generator=g) - 0.5
    camera = torch.cat([0.5 + torch.rand(4, 1, generator=g), torch.randn(4, 2, generator=g)
                        * 0.1], 1)
    points = uvd_to_camera(uvd, camera, HYBRIK_FOCAL, 2.2)
    torch.testing.assert_close(points[..., 2], uvd[..., 2] * 2.2)
    torch.testing.assert_close(semi_perspective_projection(points, camera, HYBRIK_FOCAL),
                               uvd[..., :2], rtol=0, atol=1e-6)
    # the root sits 1000 / (256 s) metres in front of the camera
    root_at_origin = uvd_to_camera(torch.zeros(4, 1, 3), camera, HYBRIK_FOCAL, 2.2)
    torch.testing.assert_close(root_at_origin[:, 0, :2], -camera[:, 1:])
    with pytest.raises(ValueError, match=r'uvd \(B, K, 3\) and camera \(B, 3\)'):
        uvd_to_camera(uvd[..., :2], camera, HYBRIK_FOCAL, 2.2)


def test_hybrik_grid_soft_argmax():
    logits = torch.full((1, 2, 4, 6, 8), -math.inf)
    logits[0, 0, 3, 5, 7] = 0.0
    logits[0, 1, 0, 0, 0] = 0.0
    coords = soft_argmax_3d(logits, grid='hybrik')
    torch.testing.assert_close(coords[0], torch.tensor([[7 / 8 - .5, 5 / 6 - .5, 3 / 4 - .5],
                                                        [-.5, -.5, -.5]]), rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="grid must be one of"):
        soft_argmax_3d(logits, grid='corners')


def test_hybrik_losses_reach_the_heatmaps_and_the_camera(standin_model_dir):
    head = _randomise(build(standin_model_dir, convention='hybrik'), seed=7)
    feats = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(6))
    out = head(feats, with_mesh=False)
    targets = dict(keypoints3d=torch.randn(2, 29, 3) * 0.2, keypoints3d_valid=torch.ones(2, 29),
                   keypoints2d=torch.rand(2, 29, 2) - 0.5, keypoints2d_valid=torch.ones(2, 29),
                   theta=torch.randn(2, 72) * 0.3, betas=torch.randn(2, 10),
                   smpl_valid=torch.ones(2))
    losses = head.loss(out, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    # the 3D keypoints depend on the camera scale (the root's depth), not on its shift
    grad_3d = torch.autograd.grad(losses['loss_kp3d'], out['camera'], retain_graph=True)[0]
    assert grad_3d[:, 0].abs().min() > 1e-4
    assert grad_3d[:, 1:].abs().max() < 1e-3 * grad_3d[:, 0].abs().min()  # rounding only
    grad_2d = torch.autograd.grad(losses['loss_kp2d'], out['camera'], retain_graph=True)[0]
    assert grad_2d[:, 1:].abs().min() > 1e-4  # eq. 8 trains the shift
    losses['loss_kp3d'].backward()
    assert head.final_conv.weight.grad.abs().sum() > 0


def test_unknown_convention_is_refused(standin_model_dir):
    with pytest.raises(ValueError, match=r"convention must be one of \('xyz', 'hybrik'\)"):
        build(standin_model_dir, convention='uvd')
