"""The head's geometry path and losses, on the stand-in body model."""
import pytest
import torch

from unspat_mm.models.heads import IKMeshHead
from unspat_mm.models.utils import (axis_angle_to_matrix, rotation_6d_to_matrix,
                                    twist_angles_from_pose)


@pytest.fixture(scope='module')
def head(standin_model_dir):
    torch.manual_seed(0)
    return IKMeshHead(in_channels=16, body_model=dict(type='SMPLBodyModel',
                                                      model_dir=standin_model_dir),
                      deconv_channels=(8, 8, 8), depth_bins=8, fc_channels=(16, )).eval()


def _natural_poses(n, seed):
    g = torch.Generator().manual_seed(seed)
    theta = (torch.rand(n, 72, generator=g) - 0.5) * 1.2
    theta[:, :3] = (torch.rand(n, 3, generator=g) - 0.5) * 3.0
    betas = torch.randn(n, 10, generator=g) * 0.8
    return theta, betas


def test_ground_truth_keypoints_and_twist_reproduce_the_mesh(head):
    theta, betas = _natural_poses(64, seed=1)
    body = head.body_model(theta, betas)
    keypoints = body['joints29'] - body['joints29'][:, :1]  # leaves from the skinned mesh
    phi = twist_angles_from_pose(theta, head.body_model.rest_joints29(betas))
    twist = torch.stack([phi.cos(), phi.sin()], dim=-1)
    out = head.mesh_from_keypoints(keypoints, twist, betas)
    vertex_error = (out['vertices'] - body['vertices']).norm(dim=-1)
    print(f'\nIK/SMPL path vertex error: max {vertex_error.max() * 1e3:.3f} mm, '
          f'mean {vertex_error.mean() * 1e3:.4f} mm')
    assert vertex_error.max() < 1e-3  # metres
    # and the comparison can fail: without the true twist the mesh is off
    wrong = head.mesh_from_keypoints(keypoints, torch.ones_like(twist) * (2**-.5), betas)
    assert (wrong['vertices'] - body['vertices']).norm(dim=-1).max() > 1e-2


def test_forward_outputs_are_consistent(head):
    feats = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    out = head(feats)
    assert torch.equal(out['keypoints3d'][:, 0], torch.zeros(3, 3))  # root-relative
    torch.testing.assert_close(out['twist'].norm(dim=-1), torch.ones(3, 23))
    assert (out['sigma'] > 0).all() and (out['camera'][:, 0] > 0).all()
    # the mesh is the body model's mesh of the returned theta
    again = head.body_model(out['theta'], out['betas'])
    torch.testing.assert_close(again['vertices'], out['vertices'], atol=1e-5, rtol=0)
    # heatmap coordinates live in a cube of cube_size metres
    assert out['keypoints3d'].abs().max() <= head.cube_size


def test_losses_vanish_at_ground_truth_and_ignore_invalid_samples(head):
    theta, betas = _natural_poses(4, seed=2)
    body = head.body_model(theta, betas)
    phi = twist_angles_from_pose(theta, head.body_model.rest_joints29(betas))
    keypoints = body['joints29'] - body['joints29'][:, :1]
    from unspat_mm.models.utils import axis_angle_to_matrix
    outputs = dict(keypoints3d=keypoints, keypoints2d=keypoints[..., :2] * 0.4,
                   sigma=torch.full((4, 29), 0.1), twist=torch.stack([phi.cos(), phi.sin()], -1),
                   betas=betas, rotmats=axis_angle_to_matrix(theta.view(4, 24, 3)))
    targets = dict(keypoints3d=keypoints, keypoints3d_valid=torch.ones(4, 29),
                   keypoints2d=keypoints[..., :2] * 0.4, keypoints2d_valid=torch.ones(4, 29),
                   theta=theta, betas=betas, smpl_valid=torch.ones(4))
    losses = head.loss(outputs, targets)
    for name in ('loss_beta', 'loss_theta', 'loss_twist'):
        assert losses[name].abs().item() < 1e-6, name
    # A sample without SMPL labels (e.g. Human3.6M without MoSh) may hold NaN there.
    targets['theta'][1] = float('nan')
    targets['betas'][1] = float('nan')
    targets['smpl_valid'][1] = 0
    outputs['betas'] = outputs['betas'].clone()
    outputs['betas'][1] += 5.0
    masked = head.loss(outputs, targets)
    assert all(torch.isfinite(v) for v in masked.values())
    assert masked['loss_beta'].abs().item() < 1e-6


@pytest.mark.parametrize('detach', [True, False])
def test_theta_loss_reaches_the_keypoints_only_when_the_ik_is_not_detached(standin_model_dir,
                                                                          detach):
    torch.manual_seed(0)
    head = IKMeshHead(in_channels=16, body_model=dict(type='SMPLBodyModel',
                                                      model_dir=standin_model_dir),
                      deconv_channels=(8, 8, 8), depth_bins=8, fc_channels=(16, ),
                      detach_ik_keypoints=detach)
    feats = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    out = head(feats)
    theta, betas = _natural_poses(2, seed=3)
    loss = head.loss_theta(out['rotmats'], theta, torch.ones(2))
    loss.backward()
    heatmap_grad = head.final_conv.weight.grad
    twist_grad = head.twist_fc.weight.grad
    # the twist branch learns from theta either way (HybrIK's split)
    assert twist_grad is not None and twist_grad.abs().sum() > 0
    if detach:
        assert heatmap_grad is None or torch.count_nonzero(heatmap_grad) == 0
    else:
        assert heatmap_grad.abs().sum() > 0


def test_root_regressor_is_an_auxiliary_that_leaves_the_ik_alone(standin_model_dir):
    def build(loss_root):
        torch.manual_seed(0)
        return IKMeshHead(in_channels=16, body_model=dict(type='SMPLBodyModel',
                                                          model_dir=standin_model_dir),
                          deconv_channels=(8, 8, 8), depth_bins=8, fc_channels=(16, ),
                          loss_root=loss_root)

    feats = torch.randn(3, 16, 4, 4, generator=torch.Generator().manual_seed(2))
    plain, aux = build(None), build(dict(type='Rotation6DLoss', loss_weight=9.0))
    assert plain.root_fc is None and aux.root_fc is not None
    out_plain, out = plain.eval()(feats), aux.eval()(feats)
    assert 'root_rotmat' not in out_plain
    # the IK's result does not depend on the regressor (same weights otherwise)
    for key in ('keypoints3d', 'theta', 'vertices'):
        assert torch.equal(out[key], out_plain[key]), key
    rot = out['root_rotmat']
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, torch.eye(3).expand(3, 3, 3),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(rot, rotation_6d_to_matrix(out['root_6d']))

    theta, betas = _natural_poses(3, seed=4)
    theta[1] = float('nan')  # no SMPL label: masked
    targets = dict(keypoints3d=out['keypoints3d'].detach(), keypoints3d_valid=torch.ones(3, 29),
                   keypoints2d=out['keypoints2d'].detach(), keypoints2d_valid=torch.ones(3, 29),
                   theta=theta, betas=torch.nan_to_num(betas), smpl_valid=torch.tensor([1., 0, 1]))
    losses = aux.train().loss(out, targets)
    assert 'loss_root' not in plain.loss(out_plain, targets)
    gt = axis_angle_to_matrix(theta[[0, 2], :3])
    gt_6d = torch.cat([gt[:, :, 0], gt[:, :, 1]], dim=1)  # the first two columns
    expected = 9.0 * ((out['root_6d'][[0, 2]] - gt_6d)**2).mean()  # on the raw output
    torch.testing.assert_close(losses['loss_root'], expected)
    aux.zero_grad()
    losses['loss_root'].backward()
    assert aux.root_fc.weight.grad.abs().sum() > 0
    assert aux.mlp[0].weight.grad.abs().sum() > 0  # it shapes the pooled features
    assert aux.final_conv.weight.grad is None


@pytest.mark.parametrize('num_deconvs', [1, 2, 3])
def test_each_deconvolution_doubles_the_heatmap_resolution(standin_model_dir, num_deconvs):
    head = IKMeshHead(in_channels=16, body_model=dict(type='SMPLBodyModel',
                                                      model_dir=standin_model_dir),
                      deconv_channels=(8, ) * num_deconvs, depth_bins=4, fc_channels=())
    captured = {}
    head.final_conv.register_forward_hook(lambda m, i, o: captured.update(heatmaps=o))
    head(torch.randn(2, 16, 4, 4), with_mesh=False)
    side = 4 * 2**num_deconvs
    assert tuple(captured['heatmaps'].shape) == (2, 29 * 4, side, side)


def test_a_head_without_deconvolutions_is_refused(standin_model_dir):
    with pytest.raises(ValueError, match='at least one deconvolution'):
        IKMeshHead(in_channels=16, body_model=dict(type='SMPLBodyModel',
                                                   model_dir=standin_model_dir),
                   deconv_channels=())


def test_the_ik_root_weighs_the_pelvis_children_by_sigma(head):
    from unspat_mm.models.utils import twist_swing_ik
    feats = torch.randn(4, 16, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = head(feats, with_mesh=False)
        rest = head.body_model.rest_joints29(out['betas'])
        weights = out['sigma'][:, [1, 2, 3]].pow(-2)  # both hips and spine1
        weighted, _ = twist_swing_ik(out['keypoints3d'], out['twist'], rest, weights=weights)
        equal, _ = twist_swing_ik(out['keypoints3d'], out['twist'], rest)
    torch.testing.assert_close(out['rotmats'], weighted, rtol=0, atol=1e-6)
    assert (out['rotmats'][:, 0] - equal[:, 0]).abs().max() > 1e-4  # sigma does matter here
    head.ik_root_weights = 'equal'
    try:
        with torch.no_grad():
            plain = head(feats, with_mesh=False)
    finally:
        head.ik_root_weights = 'sigma'
    torch.testing.assert_close(plain['rotmats'], equal, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="ik_root_weights must be 'sigma' or 'equal'"):
        IKMeshHead(in_channels=16, body_model=head.body_model, ik_root_weights='svd')
