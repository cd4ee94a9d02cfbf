import numpy as np
import pytest
import torch

from unspat_mm.datasets.transforms import PackVideoMeshInputs

# the fields the model's loss reads (unspat_mm/models/estimators/unspat.py TARGET_FIELDS)
TARGETS = {'keypoints3d': (29, 3), 'keypoints3d_valid': (29, ), 'keypoints2d': (29, 2),
           'keypoints2d_valid': (29, ), 'theta': (72, ), 'betas': (10, ), 'smpl_valid': ()}


def _results(t=5, size=(64, 48)):
    rng = np.random.default_rng(0)
    w, h = size
    kp2d = rng.uniform(0, 1, (t, 29, 2)) * np.array([w, h])
    kp2d[2, 0] = [0., 0.]
    kp2d[2, 1] = [w, h]
    return dict(imgs=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), center_index=2,
                input_size=size, img_shape=(h, w), keypoints2d=kp2d,
                keypoints2d_valid=np.ones((t, 29)), keypoints3d=rng.normal(size=(t, 29, 3)),
                keypoints3d_valid=np.ones((t, 29)), theta=rng.normal(size=(t, 72)),
                betas=rng.normal(size=(t, 10)), smpl_valid=np.array([0, 0, 1, 0, 0.]),
                gt_joints14=rng.normal(size=(t, 14, 3)), sequence_id='seq3', frame_index=7,
                valid=True, occluded=False, crop_bbox=rng.normal(size=(t, 4)),
                rng=np.random.default_rng(1))


def test_packs_the_middle_frame():
    res = _results()
    out = PackVideoMeshInputs()(dict(res))
    inputs, sample = out['inputs'], out['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (5, 3, 48, 64)
    np.testing.assert_array_equal(inputs[3].permute(1, 2, 0).numpy(), res['imgs'][3])
    assert set(sample.keys()) == set(TARGETS) | {'gt_joints14'}
    for key, shape in TARGETS.items():
        assert sample.get(key).dtype == torch.float32 and tuple(sample.get(key).shape) == shape
    np.testing.assert_allclose(sample.keypoints3d.numpy(), res['keypoints3d'][2], rtol=1e-6)
    np.testing.assert_allclose(sample.theta.numpy(), res['theta'][2], rtol=1e-6)
    np.testing.assert_allclose(sample.gt_joints14.numpy(), res['gt_joints14'][2], rtol=1e-6)
    # normalised crop coordinates: the crop spans [-0.5, 0.5]
    np.testing.assert_allclose(sample.keypoints2d[0].numpy(), [-.5, -.5])
    np.testing.assert_allclose(sample.keypoints2d[1].numpy(), [.5, .5])
    np.testing.assert_allclose(sample.keypoints2d.numpy(),
                               res['keypoints2d'][2] / np.array([64, 48]) - .5, rtol=1e-6)
    assert sample.smpl_valid.item() == 1.
    assert sample.sequence_id == 'seq3' and sample.frame_index == 7 and sample.valid is True
    assert sample.occluded is False and sample.img_shape == (48, 64)
    np.testing.assert_array_equal(sample.crop_bbox, res['crop_bbox'][2])
    assert 'rng' not in sample.metainfo_keys()


def test_needs_a_crop():
    res = _results()
    res.pop('input_size')
    with pytest.raises(KeyError, match='VideoBBoxCrop'):
        PackVideoMeshInputs()(res)


def test_packs_gt_joints17_and_the_flip_flag():
    res = _results()
    res.pop('gt_joints14')
    res['gt_joints17'] = np.random.default_rng(2).normal(size=(5, 17, 3))
    res['flipped'] = True
    sample = PackVideoMeshInputs()(res)['data_samples']
    assert set(sample.keys()) == set(TARGETS) | {'gt_joints17'}
    assert sample.gt_joints17.dtype == torch.float32
    np.testing.assert_allclose(sample.gt_joints17.numpy(), res['gt_joints17'][2], rtol=1e-6)
    assert sample.flipped is True


def test_a_flipped_window_packs_the_mirrored_targets():
    """Flip -> crop -> pack: the packed middle frame is the mirror of the unflipped one."""
    from unspat_mm.datasets.transforms import RandomVideoFlip, VideoBBoxCrop, flip_joints
    from unspat_mm.structures.skeleton import HYBRIK_FLIP_PAIRS
    res = _results(size=(64, 64))
    res['imgs'] = np.random.default_rng(3).integers(0, 256, (5, 48, 64, 3), dtype=np.uint8)
    res['bbox'] = np.repeat([[32., 24., 64., 48.]], 5, 0)  # centred: the crop is symmetric
    for key in ('input_size', 'img_shape', 'crop_bbox'):
        res.pop(key)
    crop, pack = VideoBBoxCrop(input_size=64), PackVideoMeshInputs()
    plain = pack(crop({**res}))
    flipped = pack(crop(RandomVideoFlip(prob=1.)({**res})))
    assert flipped['data_samples'].flipped is True and 'flipped' not in plain['data_samples']
    np.testing.assert_array_equal(flipped['inputs'].numpy(), plain['inputs'].numpy()[..., ::-1])
    a, b = plain['data_samples'], flipped['data_samples']
    # crop coordinates in [-0.5, 0.5]: the mirror is x -> -x
    np.testing.assert_allclose(b.keypoints2d.numpy(),
                               flip_joints(a.keypoints2d.numpy(), HYBRIK_FLIP_PAIRS, 0.),
                               atol=1e-5)
    np.testing.assert_allclose(b.keypoints3d.numpy(),
                               flip_joints(a.keypoints3d.numpy(), HYBRIK_FLIP_PAIRS), atol=1e-6)


def test_targets_share_one_storage_and_survive_a_data_worker():
    """One storage per sample (a worker sends each storage through a shared-memory file
    of its own); the fields must still arrive intact in the training process."""
    from mmengine.dataset import pseudo_collate
    samples = [PackVideoMeshInputs()(dict(_results()))['data_samples'] for _ in range(2)]
    storage = samples[0].theta.untyped_storage().data_ptr()
    assert all(samples[0].get(key).untyped_storage().data_ptr() == storage
               for key in list(TARGETS) + ['gt_joints14'])
    loader = torch.utils.data.DataLoader(samples, batch_size=2, num_workers=1,
                                         collate_fn=pseudo_collate)
    received = next(iter(loader))
    for sent, got in zip(samples, received):
        for key in list(TARGETS) + ['gt_joints14']:
            assert torch.equal(got.get(key), sent.get(key)), key
            assert got.get(key).shape == sent.get(key).shape
