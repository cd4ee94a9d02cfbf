"""The estimator end to end: it trains (overfits two clips) and predicts."""
import copy

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.structures import BaseDataElement

from unspat_mm.datasets import SyntheticVideoDataset
from unspat_mm.models.heads import semi_perspective_projection
from unspat_mm.registry import MODELS

# The bound: the 29-keypoint error falls by >= 90% in <= 200 steps. Measured with
# the embedded default's model and optimizer (one thread): 93.5% for this test's seed,
# 93.5-96.6% over model seeds 0-4.
MAX_ERROR_RATIO = 0.10
NUM_STEPS = 200


def model_cfg_from(cfg, model_dir):
    """A copy of ``cfg.model`` whose body model is read from ``model_dir``."""
    model = copy.deepcopy(cfg.model)
    model.head.body_model.model_dir = model_dir
    return model


def tiny_model_cfg(model_dir):
    return model_cfg_from(Config.fromfile('configs/_base_/models/unspat_tiny.py'), model_dir)


def embedded_default_model_and_optimizer(model_dir):
    """The model and the optimizer wrapper of ``configs/unspat_synthetic.py`` (T=4)."""
    cfg = Config.fromfile('configs/unspat_synthetic.py')
    model = MODELS.build(model_cfg_from(cfg, model_dir))
    return model, build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper)), cfg.num_frames


def two_clips(body_model, num_frames=8, size=64):
    g = torch.Generator().manual_seed(3)
    theta = (torch.rand(2, 72, generator=g) - 0.5) * 1.0
    theta[:, :3] = torch.tensor([[3.1, 0.0, 0.0], [3.0, 0.5, 0.0]])  # upright in camera axes
    betas = torch.randn(2, 10, generator=g) * 0.5
    body = body_model(theta, betas)
    keypoints3d = body['joints29'] - body['joints29'][:, :1]
    # 2D labels consistent with the head's camera model (s = 0.45, centred)
    keypoints2d = semi_perspective_projection(keypoints3d, torch.tensor([[0.45, 0., 0.]] * 2),
                                              focal=1000. / 256.)
    inputs = [torch.rand(num_frames, 3, size, size, generator=g) * 255 for _ in range(2)]
    samples = []
    for i in range(2):
        samples.append(BaseDataElement(
            metainfo=dict(sequence_id=f'clip{i}', frame_index=num_frames // 2, valid=True),
            keypoints3d=keypoints3d[i], keypoints3d_valid=torch.ones(29),
            keypoints2d=keypoints2d[i], keypoints2d_valid=torch.ones(29),
            theta=theta[i], betas=betas[i], smpl_valid=torch.tensor(1.0)))
    return dict(inputs=inputs, data_samples=samples)


def keypoint_error_mm(model, data):
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data)
        out = model(batch['inputs'], mode='tensor')
    gt = torch.stack([s.keypoints3d for s in data['data_samples']])
    model.train()
    return ((out['keypoints3d'] - gt).norm(dim=-1).mean() * 1000).item()


def two_synthetic_clips(cache_dir, model_dir, settings, num_frames=8, size=64):
    """The middle windows of the first two training sequences of the tiny synthetic
    set, cropped as the embedded default's test pipeline crops them."""
    dataset = SyntheticVideoDataset(
        split='train', cache_dir=cache_dir, body_model_dir=model_dir, settings=settings,
        num_frames=num_frames, test_mode=True,
        pipeline=[dict(type='LoadVideoFrames'),
                  dict(type='VideoBBoxCrop', input_size=(size, size)),
                  dict(type='PackVideoMeshInputs')])
    middle = settings['num_frames'] // 2
    data = pseudo_collate([dataset[middle], dataset[settings['num_frames'] + middle]])
    assert [s.sequence_id for s in data['data_samples']] == [0, 1]
    return data


def test_tiny_unspat_learns_two_synthetic_clips(standin_model_dir, synthetic_tiny,
                                                 tiny_settings, one_thread):
    """The embedded default's model and optimizer (Adam 3e-3, gradient clipping, sigma at
    0.1x lr), all losses (the auxiliary root regressor's too), 200 steps on two rendered
    64x64 clips; the error is that of the 29 soft-argmax keypoints, root-relative."""
    torch.manual_seed(0)
    model, optim_wrapper, num_frames = embedded_default_model_and_optimizer(standin_model_dir)
    data = two_synthetic_clips(synthetic_tiny[0], standin_model_dir, tiny_settings,
                               num_frames=num_frames)
    before = keypoint_error_mm(model, data)
    for _ in range(NUM_STEPS):
        losses = model(**model.data_preprocessor(data, training=True), mode='loss')
        optim_wrapper.update_params(sum(losses.values()))
    after = keypoint_error_mm(model, data)
    print(f'\n29-keypoint error: {before:.1f} mm -> {after:.1f} mm after {NUM_STEPS} steps '
          f'({100 * (1 - after / before):.1f}% lower); losses: '
          f'{ {k: round(v.item(), 3) for k, v in losses.items()} }')
    assert set(losses) == {'loss_kp3d', 'loss_kp2d', 'loss_beta', 'loss_theta', 'loss_twist',
                           'loss_root', 'loss_uncertainty'}
    assert after <= MAX_ERROR_RATIO * before


def test_training_skips_the_mesh_without_changing_the_losses(standin_model_dir):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(standin_model_dir)).eval()  # eval: no random artifacts
    data = model.data_preprocessor(two_clips(model.head.body_model), training=True)
    calls = []
    hook = model.head.body_model.register_forward_hook(lambda *args: calls.append(1))
    losses = model(**data, mode='loss')
    hook.remove()
    assert not calls  # the losses read the IK's rotations, not the mesh
    full = model.head(model.neck(model.extract_feat(data['inputs'])).feats, with_mesh=True)
    assert full['vertices'].shape == (2, 6890, 3)
    expected = model.head.loss(full, model._stack_targets(data['data_samples']))
    for name, value in expected.items():
        torch.testing.assert_close(losses[name], value, rtol=0, atol=0)


def test_predict_returns_the_middle_frame_mesh_and_no_ground_truth(standin_model_dir):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(standin_model_dir)).eval()
    data = two_clips(model.head.body_model)
    samples = model.test_step(data)
    for sample in samples:
        assert sample.pred_vertices.shape == (6890, 3)
        assert sample.pred_uncertainty.shape == (8, 4, 4)
        assert 'gt_vertices' not in sample and 'gt_joints14' not in sample  # the metric's
        again = model.head.body_model(sample.pred_theta[None], sample.pred_betas[None])
        torch.testing.assert_close(again['joints14'][0], sample.pred_joints14, atol=1e-5,
                                   rtol=0)


def test_channels_last_backbone_gives_the_same_losses_and_gradients(standin_model_dir):
    cfg = tiny_model_cfg(standin_model_dir)
    torch.manual_seed(0)
    plain = MODELS.build(cfg).eval()  # eval: no random artifacts, no dropout
    fast = MODELS.build(dict(cfg, channels_last=True)).eval()
    fast.init_weights()  # (re)initialisation must keep the NHWC layout
    weight = fast.backbone.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    fast.load_state_dict(plain.state_dict())
    data = plain.data_preprocessor(two_clips(plain.head.body_model), training=True)
    results = []
    for model in (plain, fast):
        losses = model(**copy.deepcopy(data), mode='loss')
        sum(losses.values()).backward()
        results.append((losses, {n: p.grad for n, p in model.named_parameters()
                                 if p.grad is not None}))
    (losses, grads), (fast_losses, fast_grads) = results
    assert set(grads) == set(fast_grads) and 'backbone.conv1.weight' in grads
    for name in losses:
        torch.testing.assert_close(fast_losses[name], losses[name], rtol=1e-4, atol=1e-5)
    for name in grads:
        torch.testing.assert_close(fast_grads[name], grads[name], rtol=1e-3, atol=1e-5)
