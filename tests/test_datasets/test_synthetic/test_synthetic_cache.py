"""Generation once, cache reuse, refusal to overwrite, splits and the mean-pose baseline."""
import json
import os
import os.path as osp

import numpy as np
import pytest

from unspat_mm.datasets.synthetic import (DEFAULT_SETTINGS, SequenceRenderer,
                                          ensure_synthetic_dataset, load_split, mean_pose_mpjpe,
                                          merge_settings, open_split_images)
from unspat_mm.structures.skeleton import J14_HIP_IDS


def test_cached_set_is_reused(synthetic_tiny, standin_model_dir, tiny_settings):
    cache_dir, dataset_dir = synthetic_tiny
    meta_path = osp.join(dataset_dir, 'meta.json')
    stamp = os.stat(meta_path).st_mtime_ns
    assert ensure_synthetic_dataset(tiny_settings, cache_dir, standin_model_dir) == dataset_dir
    assert os.stat(meta_path).st_mtime_ns == stamp
    assert [p for p in os.listdir(cache_dir) if '.tmp' in p] == []
    # any other setting is another set
    other = dict(tiny_settings, seed=5)
    assert ensure_synthetic_dataset(other, cache_dir, standin_model_dir) != dataset_dir


def test_split_by_sequence(synthetic_tiny, tiny_settings):
    _, dataset_dir = synthetic_tiny
    seen, frames = {}, tiny_settings['num_frames']
    for split, count in tiny_settings['num_sequences'].items():
        ann, meta = load_split(dataset_dir, split)
        ids = set(np.unique(ann['sequence_id']).tolist())
        assert ids == set(meta['splits'][split]['sequence_ids']) and len(ids) == count
        assert len(ann['frame_index']) == count * frames == len(open_split_images(dataset_dir,
                                                                                  split))
        for other, other_ids in seen.items():
            assert not ids & other_ids, f'{split} and {other} share sequences'
        seen[split] = ids


def test_stored_split_equals_a_fresh_render(synthetic_tiny, body_model, tiny_settings):
    """What is on disk (images, annotations, unpacked masks) is what the renderer makes."""
    _, dataset_dir = synthetic_tiny
    ann, meta = load_split(dataset_dir, 'val')
    images = open_split_images(dataset_dir, 'val')
    seq_id = meta['splits']['val']['sequence_ids'][0]
    fresh = SequenceRenderer(body_model, merge_settings(tiny_settings))(seq_id)
    np.testing.assert_array_equal(images[:tiny_settings['num_frames']], fresh['images'])
    width = tiny_settings['image_size'][1]
    for key in ('theta', 'joints29', 'keypoints2d', 'bbox', 'occluded'):
        np.testing.assert_array_equal(ann[key], fresh[key], err_msg=key)
    for key in ('occluder_mask', 'person_mask'):
        np.testing.assert_array_equal(np.unpackbits(ann[key], axis=-1, count=width).astype(bool),
                                      fresh[key])


def test_refuses_to_overwrite(synthetic_tiny, standin_model_dir, tiny_settings):
    cache_dir, dataset_dir = synthetic_tiny
    meta_path = osp.join(dataset_dir, 'meta.json')
    with open(meta_path) as f:
        original = f.read()
    try:
        meta = json.loads(original)
        meta['key'] = 'edited'
        with open(meta_path, 'w') as f:
            json.dump(meta, f)
        with pytest.raises(RuntimeError, match='never overwrites'):
            ensure_synthetic_dataset(tiny_settings, cache_dir, standin_model_dir)
        with open(meta_path) as f:
            assert json.load(f)['key'] == 'edited'  # left as the user left it
    finally:
        with open(meta_path, 'w') as f:
            f.write(original)


def test_bad_settings():
    with pytest.raises(KeyError, match='Unknown synthetic-data setting'):
        merge_settings(dict(image_sise=(64, 64)))
    with pytest.raises(KeyError, match='walk_prob'):
        merge_settings(dict(motion=dict(walk_probability=1.)))
    with pytest.raises(KeyError, match="'train'"):
        merge_settings(dict(num_sequences=dict(training=3)))
    assert merge_settings(dict(motion=dict(walk_prob=1.)))['motion']['yaw_speed'] == \
        DEFAULT_SETTINGS['motion']['yaw_speed']


def test_stand_in_fallback(tmp_path, tiny_settings):
    """Without SMPL the stand-in is generated in the cache and the set says so."""
    cache = str(tmp_path)
    settings = dict(tiny_settings, num_sequences=dict(train=1, val=0, test=1), num_frames=4)
    dataset_dir = ensure_synthetic_dataset(settings, cache, body_model_dir=str(tmp_path / 'no'))
    _, meta = load_split(dataset_dir, 'train')
    assert meta['body_model']['is_standin']
    assert meta['body_model']['dir'] == osp.abspath(osp.join(cache, 'body_model_standin'))
    assert osp.isfile(osp.join(cache, 'body_model_standin', 'SMPL_NEUTRAL_STANDIN.npz'))
    assert 'val' not in meta['splits']


def test_mean_pose_baseline(synthetic_tiny):
    _, dataset_dir = synthetic_tiny
    train, meta = load_split(dataset_dir, 'train')
    test, _ = load_split(dataset_dir, 'test')

    def hip_centred(j):
        return j - j[:, list(J14_HIP_IDS)].mean(1, keepdims=True)

    mean = hip_centred(train['joints14'].astype(np.float64)).mean(0)
    expected = np.linalg.norm(hip_centred(test['joints14']) - mean, axis=-1).mean() * 1000
    assert meta['mean_pose_mpjpe_mm'] == pytest.approx(expected, rel=1e-6)
    assert mean_pose_mpjpe(train['joints14'], test['joints14']) == pytest.approx(expected)
    print(f'\nmean-pose baseline MPJPE on the tiny set: {expected:.1f} mm')
    assert expected > 100  # varied motion: the baseline is far from good
