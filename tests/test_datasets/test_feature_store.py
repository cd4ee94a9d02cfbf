"""Cached backbone features: fingerprints, the sharded store, datasets that read it
(``feature_cfg``) and ``LoadVideoFeatures``, on the public-format 3DPW fixture."""
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from unspat_mm.datasets import PW3DDataset
from unspat_mm.datasets import feature_store as fs
from unspat_mm.datasets.converters.pw3d import convert_pw3d
from unspat_mm.registry import MODELS, TRANSFORMS
from unspat_mm.testing import write_pw3d_fixture

FEATURE_SHAPE = (6, 2, 2)
CROP = dict(input_size=[64, 64], padding=1.25, bbox_key='bbox', border_value=0)


@pytest.fixture(scope='module')
def pw3d_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('pw3d')
    write_pw3d_fixture(str(root / '3dpw'), splits=('train', ), num_frames=5)
    convert_pw3d(str(root / '3dpw'), str(root / 'annotations'), splits=('train', ))
    return str(root)


def pw3d(root, pipeline=(), **kwargs):
    return PW3DDataset(ann_file='annotations/pw3d_train.npz', data_root=root,
                       data_prefix=dict(img_path='3dpw/'), num_frames=4,
                       pipeline=list(pipeline), **kwargs)


def row_features(num: int) -> np.ndarray:
    """Maps whose every value says its row: row r is r + 0.5 everywhere (exact in fp16)."""
    return np.broadcast_to(np.arange(num, dtype=np.float16)[:, None, None, None] + .5,
                           (num, *FEATURE_SHAPE)).copy()


def write_store(directory, ann, fingerprint, shard_size=4, complete=True, checkpoint='A.pth'):
    """A store as tools/extract_features.py writes it, filled with :func:`row_features`."""
    num = len(ann['sequence_id'])
    os.makedirs(directory, exist_ok=True)
    feats = row_features(num)
    shards = range(0, num, shard_size)
    for i, start in enumerate(shards):
        fs.write_shard_atomic(fs.shard_path(directory, i), feats[start:start + shard_size])
    fs.write_json_atomic(osp.join(directory, 'index.json'), dict(
        format=fs.FEATURE_FORMAT, fingerprint=fingerprint, checkpoint=checkpoint,
        dataset='PW3DDataset', source='pw3d_train.npz', num_frames=num,
        annotation_digest=fs.annotation_digest(ann), shard_size=shard_size,
        num_shards=len(shards), feature_shape=list(FEATURE_SHAPE), dtype='float16',
        crop=CROP, preprocess={}, complete=complete))


def test_backbone_fingerprint_sees_weights_not_layout(tmp_path):
    torch.manual_seed(0)
    backbone = MODELS.build(dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                                 num_stages=1, strides=(1, ), dilations=(1, ), out_indices=(0, )))
    state = backbone.state_dict()
    fingerprint = fs.backbone_fingerprint(state)
    assert len(fingerprint) == 64
    backbone.to(memory_format=torch.channels_last)
    state['bn1.num_batches_tracked'] += 7  # an integer buffer: not a feature's input
    assert fs.backbone_fingerprint(backbone.state_dict()) == fingerprint
    changed = dict(state, **{'conv1.weight': state['conv1.weight'].clone()})
    changed['conv1.weight'][0, 0, 0, 0] += 1e-6
    assert fs.backbone_fingerprint(changed) != fingerprint
    bn = dict(state, **{'bn1.running_var': state['bn1.running_var'] * 2})
    assert fs.backbone_fingerprint(bn) != fingerprint
    # from a checkpoint file: its backbone.* weights, whatever else it holds
    path = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict={**{f'backbone.{k}': v for k, v in state.items()},
                                'head.fc.weight': torch.ones(2)}), path)
    assert fs.checkpoint_backbone_fingerprint(path) == fingerprint
    torch.save(dict(state_dict={'head.fc.weight': torch.ones(2)}), path)
    os.utime(path, ns=(1, 1))  # a new file: the cache is keyed by mtime and size
    with pytest.raises(KeyError, match='no backbone'):
        fs.checkpoint_backbone_fingerprint(path)
    with pytest.raises(FileNotFoundError, match='hybrik_to_unspat.py'):
        fs.checkpoint_backbone_fingerprint(str(tmp_path / 'missing.pth'))


def test_store_reads_rows_across_shards(pw3d_root, tmp_path):
    ann = pw3d(pw3d_root).ann
    directory = str(tmp_path / 'store')
    write_store(directory, ann, 'a' * 64, shard_size=3)
    store = fs.FeatureStore.open(directory, 'a' * 64, ann, hint='')
    store.max_open = 1  # shards closed and reopened in between
    rows = [9, 0, 4, 4, 5, len(store) - 1]
    np.testing.assert_array_equal(store.read(rows), row_features(len(store))[rows])
    assert store.read(rows).dtype == np.float16 and len(store._shards) == 1
    copy = pickle.loads(pickle.dumps(store))  # a data worker's copy: no open maps
    assert not copy._shards
    np.testing.assert_array_equal(copy.read([2, 3]), row_features(len(store))[[2, 3]])
    with pytest.raises(IndexError):
        store.read([len(store)])
    for path in (fs.shard_path(directory, 0), osp.join(directory, 'index.json')):
        assert not osp.exists(path + '.tmp')
    np.load(fs.shard_path(directory, 0), allow_pickle=False)  # plain npy


def test_dataset_windows_of_features_match_image_windows(pw3d_root, tmp_path):
    """``LoadVideoFeatures`` gives the rows of the window's frames and the labels exactly
    as ``LoadVideoFrames`` + the unjittered ``VideoBBoxCrop`` give them."""
    images = pw3d(pw3d_root, [dict(type='LoadVideoFrames'),
                              dict(type='VideoBBoxCrop', input_size=(64, 64), padding=1.25)])
    fingerprint = 'b' * 64
    root = str(tmp_path / 'features')
    write_store(fs.feature_store_dir(root, fingerprint, 'pw3d_train'), images.ann, fingerprint)
    feats = pw3d(pw3d_root, [dict(type='LoadVideoFeatures')],
                 feature_cfg=dict(root=root, fingerprint=fingerprint))
    assert feats.feature_store_name == 'pw3d_train' and len(feats) == len(images)
    for i in (0, 3, len(images) - 1):  # edge windows repeat their first / last frame
        a, b = images[i], feats[i]
        np.testing.assert_array_equal(b['feats'], row_features(len(feats.ann['bbox']))[
            b['frame_rows']])
        assert 'imgs' not in b and 'features' not in b
        for key in ('keypoints2d', 'keypoints2d_valid', 'crop_affine', 'crop_bbox',
                    'keypoints3d', 'theta'):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert a['input_size'] == b['input_size'] and a['img_shape'] == b['img_shape']
    packed = TRANSFORMS.build(dict(type='PackVideoMeshInputs'))(feats[2])
    assert packed['inputs'].shape == (4, *FEATURE_SHAPE)
    assert packed['inputs'].dtype == torch.float16


def test_dataset_feature_errors(pw3d_root, tmp_path):
    ann = pw3d(pw3d_root).ann
    root = str(tmp_path / 'features')

    def open_with(**cfg):
        return pw3d(pw3d_root, feature_cfg=dict(root=root, **cfg))

    # nothing extracted: says which command makes them
    with pytest.raises(FileNotFoundError) as error:
        open_with(fingerprint='c' * 64)
    assert 'python tools/extract_features.py' in str(error.value)
    assert 'cccccccccccccccc' in str(error.value)
    # only another backbone's features: named, with the file they came from
    write_store(fs.feature_store_dir(root, 'd' * 64, 'pw3d_train'), ann, 'd' * 64,
                checkpoint='other_backbone.pth')
    with pytest.raises(FileNotFoundError, match='dddddddddddddddd \\(from other_backbone.pth'):
        open_with(fingerprint='c' * 64)
    # a folder copied under the wrong fingerprint: never mixed
    write_store(fs.feature_store_dir(root, 'e' * 64, 'pw3d_train'), ann, 'd' * 64)
    with pytest.raises(ValueError, match='cannot be mixed'):
        open_with(fingerprint='e' * 64)
    # an interrupted extraction
    write_store(fs.feature_store_dir(root, 'f' * 64, 'pw3d_train'), ann, 'f' * 64,
                complete=False)
    with pytest.raises(ValueError, match='incomplete .*rerun'):
        open_with(fingerprint='f' * 64)
    # annotations converted again since (a box moved)
    moved = dict(ann, bbox=ann['bbox'] + np.float32(1.))
    write_store(fs.feature_store_dir(root, '1' * 64, 'pw3d_train'), moved, '1' * 64)
    with pytest.raises(ValueError, match='other annotations'):
        open_with(fingerprint='1' * 64)
    with pytest.raises(ValueError, match='feature_cfg must be'):
        open_with(fingerprint='1' * 64, checkpoint='x.pth')
    with pytest.raises(KeyError, match='feature_cfg'):
        TRANSFORMS.build(dict(type='LoadVideoFeatures'))(dict(frame_rows=np.arange(4)))
    with open(osp.join(fs.feature_store_dir(root, 'd' * 64, 'pw3d_train'), 'index.json')) as f:
        assert json.load(f)['checkpoint'] == 'other_backbone.pth'  # nothing was rewritten
