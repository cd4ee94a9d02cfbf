import os

import numpy as np
import pytest

from unspat_mm.datasets.annotation_format import load_video_annotations
from unspat_mm.datasets.converters import convert_humandata, convert_humandata_file
from unspat_mm.datasets.converters.common import link_tracks
from unspat_mm.structures.skeleton import HYBRIK_JOINT_NAMES
from unspat_mm.testing import HUMANDATA_FIXTURE_DATASETS, tree_digest, write_humandata_fixture
from unspat_mm.utils.safe_unpickle import CorruptFileError, UnsafePickleError


def _convert(tmp_path, dataset, compressed=True):
    data = tmp_path / 'data'
    truth = write_humandata_fixture(str(data / 'preprocessed' / f'{dataset}.npz'), dataset,
                                    num_frames=5, image_root=str(data), compressed=compressed,
                                    seed=7)
    before = tree_digest(str(data))
    out = convert_humandata_file(truth['path'], str(tmp_path / 'ann' / f'{dataset}.npz'),
                                 dataset, image_root=str(data))
    assert tree_digest(str(data)) == before  # input and images only read
    return load_video_annotations(out), truth['arrays']


@pytest.mark.parametrize('compressed', [True, False])
@pytest.mark.parametrize('dataset', HUMANDATA_FIXTURE_DATASETS)
def test_conversion_matches_truth(tmp_path, dataset, compressed):
    got, want = _convert(tmp_path, dataset, compressed)
    assert set(got) - {'format', 'dataset_name'} == set(want)
    for key in ('img_path', 'sequence_id'):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    for key in ('frame_index', 'keypoints2d_valid', 'keypoints3d_valid', 'smpl_valid', 'valid'):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    np.testing.assert_allclose(got['keypoints2d'], want['keypoints2d'], atol=1e-3)
    np.testing.assert_allclose(got['keypoints3d'], want['keypoints3d'], atol=1e-5)
    np.testing.assert_allclose(got['bbox'], want['bbox'], atol=1e-3)
    np.testing.assert_allclose(got['theta'], want['theta'], atol=1e-6)
    np.testing.assert_allclose(got['betas'], want['betas'], atol=1e-6)
    for key in ('gt_joints14', 'gt_joints17'):
        if key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-5)


def test_dataset_specific_labels(tmp_path):
    """Spot checks stated by name: what each dataset labels and how tracks are cut."""
    h36m, _ = _convert(tmp_path / 'a', 'h36m')
    j = {n: i for i, n in enumerate(HYBRIK_JOINT_NAMES)}
    valid3d = {n for n in j if h36m['keypoints3d_valid'][0, j[n]]}
    assert valid3d == {f'{s}_{p}' for s in ('left', 'right')
                       for p in ('knee', 'ankle', 'shoulder', 'elbow', 'wrist')}
    assert h36m['keypoints2d_valid'][0, [j['pelvis'], j['left_hip'], j['head_top']]].all()
    assert h36m['sequence_id'][0] == 'S1/images/S1_Directions_1.54138969'
    assert h36m['frame_index'].tolist() == [1, 6, 11, 16, 21]  # every 5th frame
    np.testing.assert_allclose(h36m['gt_joints14'][:, 2:4].mean(1), 0, atol=1e-6)
    posetrack, _ = _convert(tmp_path / 'b', 'posetrack')
    assert sorted(set(posetrack['sequence_id'])) == [
        'images/train/000001_bonn_train/track0', 'images/train/000001_bonn_train/track1']
    assert not posetrack['keypoints3d_valid'].any() and not posetrack['smpl_valid'].any()
    assert posetrack['keypoints2d_valid'][1, j['left_wrist']] == 0  # confidence 0 in the file
    pw3d, _ = _convert(tmp_path / 'c', '3dpw')
    assert pw3d['gender'].tolist() == ['male'] * 5 + ['female'] * 5
    insta, _ = _convert(tmp_path / 'd', 'insta_variety')
    assert insta['img_path'][0] == 'fixture_video_00/3.jpg'


def test_link_tracks_follows_overlap():
    # two people swap row order every frame; one leaves, a third appears far away
    video = np.array(['v'] * 5)
    frame = np.array([0, 0, 1, 1, 2])
    bbox = np.array([[10, 10, 8, 8], [40, 10, 8, 8], [41, 10, 8, 8], [11, 10, 8, 8],
                     [80, 80, 8, 8]], float)
    assert link_tracks(video, frame, bbox).tolist() == [
        'v/track0', 'v/track1', 'v/track1', 'v/track0', 'v/track2']
    single = link_tracks(np.array(['a', 'a', 'b']), np.array([0, 1, 0]), bbox[:3])
    assert single.tolist() == ['a', 'a', 'b']


def _fixture(tmp_path, dataset='h36m', **kwargs):
    return write_humandata_fixture(str(tmp_path / 'in' / 'hd.npz'), dataset, num_frames=3,
                                   image_root=str(tmp_path / 'in'), **kwargs)['path']


def _edit(path, **changes):
    with np.load(path, allow_pickle=True) as f:  # the test's own trusted file
        arrays = dict(f)
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez_compressed(path, **arrays)


class _Unknown:
    pass


@pytest.mark.parametrize('changes, error, message', [
    (dict(image_path=None), KeyError, r"missing field\(s\) \['image_path'\]"),
    (dict(bbox_xywh=np.ones((3, 3))), ValueError,
     r'field bbox_xywh has shape \(3, 3\), expected \(N, 5\)'),
    (dict(keypoints2d=np.ones((3, 100, 3))), ValueError,
     r'field keypoints2d has 100 keypoints per row; expected 190 .* or 17'),
    (dict(keypoints3d=np.ones((2, 17, 4))), ValueError,
     r'field keypoints3d has shape \(2, 17, 4\), expected \(N, 190, 4\) with N = 3'),
    (dict(keypoints2d_mask=np.ones(49)), ValueError, r'field keypoints2d_mask has shape \(49,\)'),
    (dict(keypoints2d_convention=np.array('smpl_49')), ValueError, "'smpl_49'"),
    (dict(smpl=np.array({'global_orient': np.zeros((3, 3)), 'betas': np.zeros((3, 10))})),
     KeyError, r"field smpl lacks \['body_pose'\]"),
    (dict(smpl=np.array({'global_orient': np.zeros((3, 3)), 'body_pose': np.zeros((3, 22, 3)),
                         'betas': np.zeros((3, 10))})), ValueError, 'smpl.body_pose has shape'),
    (dict(meta=np.array({'gender': ['m', 'x', 'f']})), ValueError, 'field meta.gender'),
    (dict(image_path=np.array(['/abs/S1/0001.jpg', 'a/2.jpg', 'a/3.jpg'])), ValueError,
     r'image_path\[0\] = .*is absolute'),
])
def test_malformed_fields(tmp_path, changes, error, message):
    path = _fixture(tmp_path)
    _edit(path, **changes)
    with pytest.raises(error, match=rf'{path}: .*{message}'):
        convert_humandata(path, 'h36m')


def test_truncated_unknown_class_and_empty_box(tmp_path):
    path = _fixture(tmp_path)
    blob = open(path, 'rb').read()
    cut = tmp_path / 'cut.npz'
    cut.write_bytes(blob[:len(blob) - 200])
    with pytest.raises(CorruptFileError, match=f'{cut}'):
        convert_humandata(str(cut), 'h36m')
    evil = np.empty((), object)
    evil[()] = {'gender': [_Unknown()]}
    _edit(path, meta=evil)
    with pytest.raises(UnsafePickleError,
                       match=rf"_Unknown from {path} \(member 'meta'\): only numpy arrays"):
        convert_humandata(path, 'h36m')
    # a 3DPW file has no 2D keypoints: an empty box cannot be repaired
    path = _fixture(tmp_path / 'b', '3dpw')
    _edit(path, bbox_xywh=np.zeros((6, 5)))
    with pytest.raises(ValueError, match=r'field bbox_xywh\[0\] = .* is empty'):
        convert_humandata(path, '3dpw')


def test_box_sources(tmp_path):
    truth = write_humandata_fixture(str(tmp_path / 'in' / 'hd.npz'), 'pennaction', num_frames=3)
    path = truth['path']
    got = convert_humandata(path, 'pennaction', bbox_source='file')
    np.testing.assert_allclose(got['bbox'], truth['bbox_file'], atol=1e-4)
    # the file's box is 1.2x the keypoints' (mmhuman3d's enlargement), same centre
    tight = convert_humandata(path, 'pennaction')['bbox']
    np.testing.assert_allclose(got['bbox'][:, 2:], 1.2 * tight[:, 2:], atol=1e-4)
    np.testing.assert_allclose(got['bbox'][:, :2], tight[:, :2], atol=1e-4)
    with np.load(path) as f:
        bbox = f['bbox_xywh'].copy()
    bbox[1, 4] = 0  # confidence 0: mmhuman3d's marker of no box
    _edit(path, bbox_xywh=bbox)
    got = convert_humandata(path, 'pennaction', bbox_source='file')
    np.testing.assert_allclose(got['bbox'][1], tight[1], atol=1e-4)
    np.testing.assert_allclose(got['bbox'][[0, 2]], truth['bbox_file'][[0, 2]], atol=1e-4)
    with pytest.raises(ValueError, match="bbox_source must be 'keypoints' or 'file'"):
        convert_humandata(path, 'pennaction', bbox_source='mask')


def test_outputs_never_inside_inputs_nor_overwritten(tmp_path):
    path = _fixture(tmp_path)
    before = tree_digest(str(tmp_path / 'in'))
    with pytest.raises(ValueError, match='refusing to write inside the input'):
        convert_humandata_file(path, str(tmp_path / 'in' / 'h36m_unspat.npz'), 'h36m')
    out = tmp_path / 'out.npz'
    out.write_bytes(b'keep me')
    with pytest.raises(FileExistsError, match='overwrite=True'):
        convert_humandata_file(path, str(out), 'h36m')
    assert out.read_bytes() == b'keep me' and tree_digest(str(tmp_path / 'in')) == before
    os.remove(out)
    (tmp_path / 'no_images').mkdir()
    with pytest.raises(FileNotFoundError, match='3 image.s. missing under'):
        convert_humandata_file(path, str(out), 'h36m', image_root=str(tmp_path / 'no_images'))
    with pytest.raises(ValueError, match="unknown dataset 'coco'"):
        convert_humandata(path, 'coco')
