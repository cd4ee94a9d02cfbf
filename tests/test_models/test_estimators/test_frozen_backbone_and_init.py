"""The paper's Table 1 protocol in the estimator: a backbone frozen for good
(``freeze_backbone``) and the partial initialisation from a converted HybrIK file
(``init_cfg=dict(type='Pretrained', ...)``: backbone and head, no neck)."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import BaseDataElement

from unspat_mm.registry import MODELS


def tiny_cfg(model_dir, **overrides):
    cfg = copy.deepcopy(Config.fromfile('configs/_base_/models/unspat_tiny.py').model)
    cfg.head.body_model.model_dir = model_dir
    cfg.update(overrides)
    return cfg


def random_batch(num_clips=2, num_frames=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = [BaseDataElement(
        keypoints3d=torch.randn(29, 3, generator=g) * .2, keypoints3d_valid=torch.ones(29),
        keypoints2d=torch.rand(29, 2, generator=g) - .5, keypoints2d_valid=torch.ones(29),
        theta=torch.randn(72, generator=g) * .2, betas=torch.zeros(10),
        smpl_valid=torch.tensor(1.)) for _ in range(num_clips)]
    inputs = [torch.randint(0, 256, (num_frames, 3, size, size), generator=g, dtype=torch.uint8)
              for _ in range(num_clips)]
    return dict(inputs=inputs, data_samples=samples)


def hybrik_like_checkpoint(model, path, drop=('neck.', )):
    """A converted-HybrIK-like file: ``model``'s weights without the neck."""
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(drop)}
    torch.save(dict(state_dict=state, meta=dict(source='test')), path)
    return state


def test_frozen_backbone_is_unchanged_by_training(standin_model_dir, one_thread):
    """Adam steps (the paper's optimizer) change the neck and head; every backbone
    parameter and batch-norm buffer (stem included) stays bit-identical, no gradient
    reaches it and the optimizer keeps no state for it."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(standin_model_dir, freeze_backbone=True))
    for m in model.backbone.modules():  # non-trivial statistics, which train mode would move
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, .1)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam', lr=1e-3)))
    model.train()
    assert not model.backbone.training and not model.backbone.norm1.training
    assert model.neck.training and model.head.training
    for step in range(3):
        logs = model.train_step(random_batch(seed=step), optim)
        assert torch.isfinite(logs['loss'])
    after = model.backbone.state_dict()
    assert 'conv1.weight' in after and 'bn1.running_mean' in after  # the stem
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    state = optim.optimizer.state
    assert not any(p in state for p in model.backbone.parameters())
    assert sum(p in state for p in model.head.parameters()) > 0
    assert any(not torch.equal(head_before[k], v) for k, v in model.head.state_dict().items())
    # no autograd graph through the backbone
    feats = model.extract_feat(torch.randn(1, 8, 3, 64, 64))
    assert feats.grad_fn is None and not feats.requires_grad


def test_unfrozen_backbone_does_train(standin_model_dir, one_thread):
    """The control: without freezing, the same steps move the backbone's weights and
    batch-norm statistics (so the test above can fail)."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(standin_model_dir))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    optim = build_optim_wrapper(model, dict(optimizer=dict(type='Adam', lr=1e-3)))
    model.train()
    model.train_step(random_batch(), optim)
    after = model.backbone.state_dict()
    assert not torch.equal(after['conv1.weight'], before['conv1.weight'])
    assert not torch.equal(after['bn1.running_mean'], before['bn1.running_mean'])


def test_init_from_hybrik_file_loads_backbone_and_head_not_neck(standin_model_dir, tmp_path):
    torch.manual_seed(1)
    source = MODELS.build(tiny_cfg(standin_model_dir))
    path = str(tmp_path / 'hybrik_converted.pth')
    state = hybrik_like_checkpoint(source, path)
    torch.manual_seed(2)
    model = MODELS.build(tiny_cfg(standin_model_dir, freeze_backbone=True,
                                  init_cfg=dict(type='Pretrained', checkpoint=path)))
    fresh_neck = {k: v.clone() for k, v in model.neck.state_dict().items()}
    model.init_weights()
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # the neck is not in the file: initialised as any fresh neck, not copied from anywhere
    neck = model.neck.state_dict()
    assert any(not torch.equal(neck[k], source.neck.state_dict()[k]) for k in neck
               if neck[k].is_floating_point())
    assert set(neck) == set(fresh_neck)
    assert all(not p.requires_grad for p in model.backbone.parameters())


def test_init_file_errors(standin_model_dir, tmp_path):
    missing = str(tmp_path / 'data/pretrained/hybrik_res34_unspat.pth')
    model = MODELS.build(tiny_cfg(standin_model_dir, freeze_backbone=True,
                                  init_cfg=dict(type='Pretrained', checkpoint=missing)))
    with pytest.raises(FileNotFoundError) as error:
        model.init_weights()
    assert 'tools/model_converters/hybrik_to_unspat.py HYBRIK.pth' in str(error.value)
    assert missing in str(error.value)
    # a file without the backbone: refused (a frozen random backbone would be nonsense)
    no_backbone = str(tmp_path / 'head_only.pth')
    hybrik_like_checkpoint(model, no_backbone, drop=('neck.', 'backbone.'))
    with pytest.raises(KeyError, match='lacks .* backbone weights'):
        model.load_pretrained(no_backbone)
    # a file for another architecture
    other = str(tmp_path / 'other.pth')
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('neck.')}
    torch.save(dict(state_dict=dict(state, **{'head.fc9.weight': torch.zeros(3)})), other)
    with pytest.raises(KeyError, match='another architecture'):
        model.load_pretrained(other)
    with pytest.raises(ValueError, match='would be downloaded'):
        MODELS.build(tiny_cfg(standin_model_dir, init_cfg=dict(
            type='Pretrained', checkpoint='https://example.com/hybrik.pth')))


def test_feature_model_takes_the_head_and_ignores_the_backbone(standin_model_dir, tmp_path):
    torch.manual_seed(1)
    source = MODELS.build(tiny_cfg(standin_model_dir))
    path = str(tmp_path / 'hybrik_converted.pth')
    state = hybrik_like_checkpoint(source, path)
    model = MODELS.build(tiny_cfg(standin_model_dir, backbone=None, freeze_backbone=True,
                                  init_cfg=dict(type='Pretrained', checkpoint=path)))
    assert model.backbone is None and not model.freeze_backbone
    report = model.load_pretrained(path)
    assert report['ignored'] and all(k.startswith('backbone.') for k in report['ignored'])
    assert all(k.startswith('neck.') for k in report['kept'])
    for key, value in model.head.state_dict().items():
        assert torch.equal(value, state[f'head.{key}'])


def test_frozen_image_model_refuses_a_checkpoint_without_backbone(standin_model_dir):
    """Testing a features-trained checkpoint on images would leave the backbone random."""
    model = MODELS.build(tiny_cfg(standin_model_dir, freeze_backbone=True))
    features_trained = {k: v for k, v in model.state_dict().items()
                        if not k.startswith('backbone.')}
    with pytest.raises(KeyError, match='no backbone weights'):
        model.load_state_dict(features_trained, strict=False)
    model.load_state_dict(model.state_dict())  # a complete one loads


def test_a_converted_file_of_other_conventions_is_refused(standin_model_dir, tmp_path):
    """A camera-less HybrIK or mmhuman3d file (depth factor 2.0 m, ImageNet RGB statistics)
    into a config that expects others: an error naming the options to set, not scaled
    keypoints and shifted features."""
    model = MODELS.build(tiny_cfg(standin_model_dir))  # cube 2.2, ImageNet RGB statistics
    path = str(tmp_path / 'mmhuman3d_converted.pth')
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('neck.')}
    rgb = dict(pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    torch.save(dict(state_dict=state, meta=dict(depth_factor=2.0, **rgb)), path)
    with pytest.raises(ValueError, match=r'--cfg-options model.head.cube_size=2.0'):
        model.load_pretrained(path)
    bgr = dict(pixel_mean=[103.53, 116.535, 122.4], pixel_std=[57.375, 57.12, 58.395])
    torch.save(dict(state_dict=state, meta=dict(depth_factor=2.2, **bgr)), path)
    with pytest.raises(ValueError, match=r'model.data_preprocessor.mean="\[103.53'):
        model.load_pretrained(path)
    torch.save(dict(state_dict=state, meta=dict(depth_factor=2.2, **rgb)), path)
    assert model.load_pretrained(path)['loaded']  # matching conventions load
