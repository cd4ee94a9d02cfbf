"""SyntheticVideoDataset end to end: what the model receives is consistent with itself."""
import numpy as np
import pytest
import torch

from unspat_mm.datasets.synthetic import load_split
from unspat_mm.datasets.transforms import apply_affine
from unspat_mm.models.estimators.unspat import TARGET_FIELDS
from unspat_mm.registry import DATASETS
from unspat_mm.structures.skeleton import J14_HIP_IDS

T = 8
CROP = 64


def _pipeline(augment, background=False):
    jitter = dict(scale_factor=.25, rot_factor=30., rot_prob=1.) if augment else {}
    swap = [dict(type='RandomSyntheticBackground', prob=1.)] if background else []
    return [dict(type='LoadVideoFrames'), *swap,
            dict(type='VideoBBoxCrop', input_size=CROP, **jitter),
            dict(type='PackVideoMeshInputs')]


@pytest.fixture(scope='module')
def make(synthetic_tiny, standin_model_dir, tiny_settings):
    cache_dir, _ = synthetic_tiny

    def build(split='train', augment=False, background=False, **kwargs):
        return DATASETS.build(dict(
            type='SyntheticVideoDataset', split=split, cache_dir=cache_dir,
            body_model_dir=standin_model_dir, settings=tiny_settings, num_frames=T,
            pipeline=_pipeline(augment, background), **kwargs))

    return build


def test_middle_frame_targets(make, synthetic_tiny):
    ds = make('train')
    raw, _ = load_split(synthetic_tiny[1], 'train')
    for idx in (0, 5, len(ds) - 1):
        item = ds[idx]
        sample = item['data_samples']
        assert item['inputs'].shape == (T, 3, CROP, CROP) and item['inputs'].dtype == torch.uint8
        row = np.flatnonzero((raw['sequence_id'] == sample.sequence_id)
                             & (raw['frame_index'] == sample.frame_index))[0]
        joints = raw['joints29'][row]
        np.testing.assert_allclose(sample.keypoints3d.numpy(), joints - joints[0], atol=1e-6)
        j14 = raw['joints14'][row]
        np.testing.assert_allclose(sample.gt_joints14.numpy(),
                                   j14 - j14[list(J14_HIP_IDS)].mean(0), atol=1e-6)
        np.testing.assert_allclose(sample.theta.numpy(), raw['theta'][row])
        assert sample.window_frame_indices[T // 2] == sample.frame_index
        assert sample.occluded == bool(raw['occluded'][row])
        # 2D: undo the normalisation and the crop -> the stored pixel keypoints
        px = (sample.keypoints2d.numpy() + .5) * CROP
        affine = np.concatenate([sample.crop_affine, [[0, 0, 1]]]).astype(np.float64)
        back = apply_affine(px, np.linalg.inv(affine)[:2])
        np.testing.assert_allclose(back, raw['keypoints2d'][row], atol=1e-3)
    assert set(TARGET_FIELDS) <= set(sample.keys())


def test_targets_agree_with_the_body_model(make, body_model):
    """theta/betas through the model's body model give keypoints3d (pelvis-relative,
    camera axes) and gt_joints14, with rotation augmentation too."""
    ds = make('train', augment=True)
    samples = [ds[i]['data_samples'] for i in range(0, len(ds), 7)]
    assert body_model.model_path.startswith(ds.body_model_dir)
    theta = torch.stack([s.theta for s in samples])
    betas = torch.stack([s.betas for s in samples])
    with torch.no_grad():
        out = body_model(theta, betas)
    kp3d = out['joints29'] - out['joints29'][:, :1]
    torch.testing.assert_close(kp3d, torch.stack([s.keypoints3d for s in samples]),
                               atol=2e-5, rtol=0)
    j14 = out['joints14'] - out['joints14'][:, list(J14_HIP_IDS)].mean(1, keepdim=True)
    torch.testing.assert_close(j14, torch.stack([s.gt_joints14 for s in samples]), atol=2e-5,
                               rtol=0)
    angles = [np.arctan2(s.crop_affine[1, 0], s.crop_affine[0, 0]) for s in samples]
    assert np.abs(angles).max() > np.deg2rad(5)  # the rotation was exercised


def test_test_split_visits_every_frame_once(make, tiny_settings):
    ds = make('test', test_mode=True)
    pairs = [(ds.get_data_info(i)['sequence_id'], ds.get_data_info(i)['frame_index'])
             for i in range(len(ds))]
    frames = tiny_settings['num_frames']
    assert len(pairs) == len(set(pairs)) == tiny_settings['num_sequences']['test'] * frames
    assert sorted({f for _, f in pairs}) == list(range(frames))
    assert ds.metainfo['body_model_is_standin'] and ds.metainfo['mean_pose_mpjpe_mm'] > 100


def test_masks_on_request(make, tiny_settings):
    ds = make('val', with_masks=True)
    h, w = tiny_settings['image_size']
    seen = 0
    for idx in range(0, len(ds), 3):
        info = ds.get_data_info(idx)
        occ, person = info['occluder_mask'], info['person_mask']
        assert occ.shape == person.shape == (T, h, w) and occ.dtype == bool
        ratio = (occ & person).sum((1, 2)) / person.sum((1, 2))
        np.testing.assert_allclose(ratio, info['occlusion_ratio'], atol=1e-6)
        seen += int(occ.any())
    assert seen > 0
    assert 'occluder_mask' not in make('val').get_data_info(3)


def test_background_swap_keeps_the_person(make):
    plain, swapped = make('train', with_masks=True), make('train', with_masks=True,
                                                          background=True)
    a, b = plain[4], swapped[4]
    for key in ('keypoints3d', 'keypoints2d', 'theta'):
        torch.testing.assert_close(a['data_samples'].get(key), b['data_samples'].get(key))
    changed = (a['inputs'] != b['inputs']).any(1)  # (T, h, w)
    assert .2 < changed.float().mean() < .95  # the background changed, not the whole crop
