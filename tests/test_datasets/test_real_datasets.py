"""The real-dataset classes on annotation files written by the test: the window a dataset
returns carries exactly the frames, crops, joints, SMPL parameters and validity the file
encoded, with each dataset's label policy applied."""
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from unspat_mm.datasets import (H36MDataset, InstaVarietyDataset, MPIINF3DHPDataset,
                                PennActionDataset, PoseTrackDataset, PW3DDataset,
                                VideoAnnotationDataset, save_video_annotations)
from unspat_mm.registry import DATASETS

IMG_SIZE = 64  # frames are IMG_SIZE x IMG_SIZE
CROP = 32
TRACKS = {'seq_a/actor0': (10, 5), 'seq_b/actor1': (0, 3)}  # first frame index, length


def frame_code(track: int, frame: int) -> int:
    return 100 + 40 * track + 7 * frame


def write_fixture(root, dataset_name, seed=0):
    """Frames ``root/images/<track>/<frame>.png`` whose R/G channels are the pixel's x/y
    and B channel ``frame_code``; an annotation file ``root/ann.npz`` with every field
    labelled (rows shuffled). Returns ``(ann_path, arrays in sorted row order)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:IMG_SIZE, :IMG_SIZE]
    rows = []
    for t, (seq, (first, length)) in enumerate(TRACKS.items()):
        for f in range(first, first + length):
            rel = f'images/{seq.replace("/", "_")}/{f:05d}.png'
            img = np.stack([xx, yy, np.full_like(xx, frame_code(t, f))], -1).astype(np.uint8)
            os.makedirs(osp.dirname(osp.join(root, rel)), exist_ok=True)
            cv2.imwrite(osp.join(root, rel), img[..., ::-1])  # RGB -> BGR
            rows.append((rel, seq, f, t))
    num = len(rows)
    arrays = dict(
        img_path=np.array([r[0] for r in rows]), sequence_id=np.array([r[1] for r in rows]),
        frame_index=np.array([r[2] for r in rows]),
        bbox=np.c_[rng.uniform(26, 38, (num, 2)), rng.uniform(14, 22, (num, 2))],
        keypoints2d=rng.uniform(20, 44, (num, 29, 2)),
        keypoints2d_valid=(rng.uniform(size=(num, 29)) > .2).astype(np.float32),
        keypoints3d=rng.normal(0, .3, (num, 29, 3)),
        keypoints3d_valid=(rng.uniform(size=(num, 29)) > .2).astype(np.float32),
        theta=rng.normal(0, .3, (num, 72)), betas=rng.normal(0, 1, (num, 10)),
        smpl_valid=np.array([float(r[3] == 0) for r in rows]),  # track a only
        valid=rng.uniform(size=num) > .3,
        gt_joints14=rng.normal(0, .3, (num, 14, 3)),
        gt_joints17=rng.normal(0, .3, (num, 17, 3)))
    shuffled = rng.permutation(num)
    path = osp.join(root, 'ann.npz')
    save_video_annotations(path, {k: v[shuffled] for k, v in arrays.items()}, dataset_name)
    return path, {k: np.asarray(v) for k, v in arrays.items()}


# class, file's dataset_name, carries 3D, carries SMPL
CASES = [(PW3DDataset, '3dpw', True, True), (H36MDataset, 'h36m', True, True),
         (MPIINF3DHPDataset, 'mpi_inf_3dhp', True, True),
         (PennActionDataset, 'pennaction', False, False),
         (PoseTrackDataset, 'posetrack', False, False),
         (InstaVarietyDataset, 'insta_variety', False, False)]


def crop_pipeline():
    return [dict(type='LoadVideoFrames'),
            dict(type='VideoBBoxCrop', input_size=CROP, padding=1.25)]


@pytest.mark.parametrize('cls, name, has_3d, has_smpl', CASES, ids=[c[1] for c in CASES])
def test_window_matches_file(tmp_path, cls, name, has_3d, has_smpl):
    ann_path, ref = write_fixture(str(tmp_path), name)
    dataset = DATASETS.build(dict(type=cls.__name__, data_root=str(tmp_path),
                                  ann_file='ann.npz', num_frames=4,
                                  pipeline=crop_pipeline()))
    assert isinstance(dataset, cls) and dataset.metainfo['dataset_name'] == name
    assert len(dataset) == 8  # stride 1: one window per frame
    # item 1 = track a, its second frame (index 11); window rows [0, 0, 1, 2] (edge repeated)
    out = dataset[1]
    rows = np.array([0, 0, 1, 2])
    assert out['sequence_id'] == 'seq_a/actor0' and out['frame_index'] == 11
    assert out['window_frame_indices'].tolist() == [10, 10, 11, 12]
    assert out['valid'] == bool(ref['valid'][1])
    # crops: B = frame code in order; R, G = source pixel of each crop pixel's centre
    imgs = out['imgs'].astype(np.float64)
    assert imgs.shape == (4, CROP, CROP, 3)
    np.testing.assert_array_equal(imgs[:, 8:24, 8:24, 2].mean((1, 2)),
                                  [frame_code(0, f) for f in (10, 10, 11, 12)])
    u = np.arange(CROP) + .5
    for t, row in enumerate(rows):
        cx, cy, w, h = ref['bbox'][row]
        side = max(w, h) * 1.25
        x = cx + (u - CROP / 2) * side / CROP - .5  # pixel centres sit at integers in R, G
        y = cy + (u - CROP / 2) * side / CROP - .5
        inner = slice(2, CROP - 2)
        np.testing.assert_allclose(imgs[t, inner, inner, 0], np.tile(x[inner], (28, 1)),
                                   atol=0.51)  # uint8 rounding
        np.testing.assert_allclose(imgs[t, inner, inner, 1],
                                   np.tile(y[inner, None], (1, 28)), atol=0.51)
        kp = (ref['keypoints2d'][row] - [cx, cy]) * CROP / side + CROP / 2
        np.testing.assert_allclose(out['keypoints2d'][t], kp, rtol=1e-5, atol=1e-4)
        inside = ((kp >= 0) & (kp < CROP)).all(1)  # the crop invalidates joints outside it
        assert 0 < inside.sum() < 29
        np.testing.assert_array_equal(out['keypoints2d_valid'][t],
                                      ref['keypoints2d_valid'][row] * inside)
    # 3D joints and SMPL: as the file says, or absent (zero validity) for 2D-only sets
    np.testing.assert_array_equal(out['keypoints3d_valid'],
                                  ref['keypoints3d_valid'][rows] * has_3d)
    np.testing.assert_allclose(out['keypoints3d'], ref['keypoints3d'][rows] * has_3d,
                               rtol=1e-6)
    np.testing.assert_array_equal(out['smpl_valid'], ref['smpl_valid'][rows] * has_smpl)
    np.testing.assert_allclose(out['theta'], ref['theta'][rows] * has_smpl, rtol=1e-6)
    np.testing.assert_allclose(out['betas'], ref['betas'][rows] * has_smpl, rtol=1e-6)
    for key in ('gt_joints14', 'gt_joints17'):
        assert (key in out) == has_3d
        if has_3d:
            np.testing.assert_allclose(out[key], ref[key][rows], rtol=1e-6)
    # track b has no SMPL labels in the file: invalid in every dataset
    assert dataset[6]['sequence_id'] == 'seq_b/actor1'
    assert not dataset[6]['smpl_valid'].any()


def test_packed_sample_3dpw(tmp_path):
    _, ref = write_fixture(str(tmp_path), '3dpw')
    pipeline = crop_pipeline() + [dict(type='PackVideoMeshInputs')]
    dataset = PW3DDataset(ann_file=osp.join(str(tmp_path), 'ann.npz'), data_root=str(tmp_path),
                          num_frames=4, pipeline=pipeline)
    sample = dataset[7]['data_samples']  # track b, last frame (row 7)
    cx, cy, w, h = ref['bbox'][7]
    side = max(w, h) * 1.25
    np.testing.assert_allclose(sample.keypoints2d.numpy(),
                               (ref['keypoints2d'][7] - [cx, cy]) / side, atol=1e-5)
    np.testing.assert_allclose(sample.theta.numpy(), ref['theta'][7], rtol=1e-6)
    assert float(sample.smpl_valid) == 0.  # track b
    assert sample.metainfo['frame_index'] == 2
    assert sample.metainfo['sequence_id'] == 'seq_b/actor1'


def test_labels_and_prefix(tmp_path):
    """labels drops SMPL (the H36M test protocol); data_prefix moves the frames."""
    _, ref = write_fixture(str(tmp_path), 'h36m')
    dataset = H36MDataset(ann_file='ann.npz', data_root=str(tmp_path), num_frames=2,
                          labels=('keypoints2d', 'keypoints3d'), test_mode=True)
    info = dataset.get_data_info(0)
    assert not info['smpl_valid'].any() and not info['theta'].any()
    np.testing.assert_allclose(info['gt_joints14'], ref['gt_joints14'][[0, 0]], rtol=1e-6)
    assert info['img_path'][0] == osp.join(str(tmp_path), 'images/seq_a_actor0/00010.png')
    os.makedirs(tmp_path / 'frames')
    os.rename(tmp_path / 'images', tmp_path / 'frames' / 'images')
    with pytest.raises(FileNotFoundError, match='cannot read image'):
        H36MDataset(ann_file='ann.npz', data_root=str(tmp_path), num_frames=2,
                    pipeline=[dict(type='LoadVideoFrames')])[0]
    moved = H36MDataset(ann_file='ann.npz', data_root=str(tmp_path), num_frames=2,
                        data_prefix=dict(img_path='frames'),
                        pipeline=[dict(type='LoadVideoFrames')])
    assert moved[7]['imgs'][:, 0, 0, 2].tolist() == [frame_code(1, 1), frame_code(1, 2)]
    with pytest.raises(ValueError, match=re.escape("labels ['smpl'] are not carried by this "
                                                   "dataset; choose from ('keypoints2d',)")):
        PennActionDataset(ann_file='ann.npz', data_root=str(tmp_path), labels=('smpl', ))


def test_training_filter_and_stride(tmp_path):
    _, ref = write_fixture(str(tmp_path), '3dpw')
    train = PW3DDataset(ann_file='ann.npz', data_root=str(tmp_path), num_frames=4,
                        filter_cfg=dict(valid_only=True))
    centres = [train.get_data_info(i)['frame_rows'][2] for i in range(len(train))]
    assert centres == np.flatnonzero(ref['valid']).tolist()
    strided = PW3DDataset(ann_file='ann.npz', data_root=str(tmp_path), num_frames=4, stride=2)
    assert [strided.get_data_info(i)['frame_index'] for i in range(len(strided))] == [
        10, 12, 14, 0, 2]


def test_missing_and_mismatched_files(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=re.escape('PW3DDataset: annotation file ') + '.*' +
                       re.escape('3dpw_test.npz\' not found. Convert the download first '
                                 'with tools/dataset_converters/pw3d.py')):
        PW3DDataset(ann_file='3dpw_test.npz', data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='tools/dataset_converters/humandata.py'):
        InstaVarietyDataset(ann_file='insta.npz', data_root=str(tmp_path))
    write_fixture(str(tmp_path), 'h36m')
    with pytest.raises(ValueError, match="ann.npz holds 'h36m' annotations, expected '3dpw'"):
        PW3DDataset(ann_file='ann.npz', data_root=str(tmp_path))
    generic = VideoAnnotationDataset(ann_file='ann.npz', data_root=str(tmp_path),
                                     num_frames=2)
    assert generic.metainfo['ann_dataset_name'] == 'h36m' and len(generic) == 8


def test_lazy_init_defers_reading(tmp_path):
    dataset = PW3DDataset(ann_file='later.npz', data_root=str(tmp_path), lazy_init=True)
    os.makedirs(tmp_path / 'sub')
    write_fixture(str(tmp_path / 'sub'), '3dpw')
    os.rename(tmp_path / 'sub' / 'ann.npz', tmp_path / 'later.npz')
    assert len(dataset) == 8
