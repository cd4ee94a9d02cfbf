import os.path as osp
import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from unspat_mm.datasets.annotation_format import load_video_annotations
from unspat_mm.datasets.converters import convert_pw3d, convert_pw3d_split, load_pw3d_sequence
from unspat_mm.testing import dumps_py2, tree_digest, write_pw3d_fixture
from unspat_mm.utils.safe_unpickle import CorruptFileError, UnsafePickleError, safe_load_pickle


@pytest.fixture(scope='module')
def pw3d(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('3dpw'))
    truth = write_pw3d_fixture(root, splits=('train', 'test'), num_sequences=2, num_frames=6,
                               num_actors=2, seed=3)
    return root, truth


def test_conversion_matches_truth(pw3d, tmp_path):
    root, truth = pw3d
    before = tree_digest(root)
    written = convert_pw3d(root, str(tmp_path / 'ann'), splits=('train', 'test'))
    assert tree_digest(root) == before  # the download is only read
    for split in ('train', 'test'):
        assert written[split] == str(tmp_path / 'ann' / f'pw3d_{split}.npz')
        got, want = load_video_annotations(written[split]), truth['arrays'][split]
        assert str(got['dataset_name']) == '3dpw' and len(got['img_path']) == 2 * 2 * 6
        # rows: sequence file, actor, frame -- names and order exactly
        for key in ('img_path', 'sequence_id', 'gender'):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        np.testing.assert_array_equal(got['frame_index'], want['frame_index'])
        assert got['sequence_id'][0] == f'fixture_{split}_00/actor0'
        assert got['img_path'][7] == f'imageFiles/fixture_{split}_00/image_00001.jpg'
        for key in ('keypoints2d_valid', 'keypoints3d_valid', 'smpl_valid', 'valid'):
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        np.testing.assert_allclose(got['keypoints3d'], want['keypoints3d'], atol=1e-5)
        np.testing.assert_allclose(got['keypoints2d'], want['keypoints2d'], atol=1e-3)
        np.testing.assert_allclose(got['bbox'], want['bbox'], atol=1e-3)
        np.testing.assert_allclose(got['betas'], want['betas'], atol=1e-6)
        # camera-frame orientation: same rotation (axis-angle is compared as matrices)
        rot = Rotation.from_rotvec(got['theta'][:, :3].astype(np.float64)).as_matrix()
        np.testing.assert_allclose(rot, Rotation.from_rotvec(want['theta'][:, :3]).as_matrix(),
                                   atol=1e-5)
        np.testing.assert_allclose(got['theta'][:, 3:], want['theta'][:, 3:], atol=1e-6)
        np.testing.assert_allclose(got['cam_intrinsics'][0], truth['cam_intrinsics'])


def test_labels_are_consistent_in_the_camera(pw3d):
    """Independent of the truth arrays: 2D = K x 3D, box around the 2D joints, pelvis-
    relative 3D, invalid camera poses switch every camera-frame label off."""
    root, truth = pw3d
    got = convert_pw3d_split(root, 'test')
    joints = truth['joints_cam']['test']  # (rows, 24, 3) chosen in the camera by the writer
    proj = joints @ truth['cam_intrinsics'].T
    xy = proj[..., :2] / proj[..., 2:]
    on = got['valid']
    np.testing.assert_allclose(got['keypoints2d'][on, :24], xy[on], atol=1e-4)
    np.testing.assert_allclose(got['keypoints3d'][on, :24] + joints[on, :1], joints[on],
                               atol=1e-6)
    assert not got['keypoints2d_valid'][:, 24:].any() and not got['keypoints3d'][:, 24:].any()
    # the box is the projection's, on every frame
    np.testing.assert_allclose(got['bbox'][:, :2] - got['bbox'][:, 2:] / 2, xy.min(1), atol=1e-4)
    np.testing.assert_allclose(got['bbox'][:, :2] + got['bbox'][:, 2:] / 2, xy.max(1), atol=1e-4)
    off = ~on
    assert not got['keypoints2d'][off].any() and not got['keypoints3d'][off].any()
    assert off.sum() == 4  # per sequence: actor 0's last frame, actor 1's first
    assert got['frame_index'][off].tolist() == [5, 0, 5, 0]
    assert not got['keypoints2d_valid'][off].any() and not got['smpl_valid'][off].any()
    assert got['keypoints2d_valid'][~off, :24].all() and got['smpl_valid'][~off].all()


def _rewrite(root, tmp_path, change):
    """A copy of the first test sequence, edited by ``change(dict)``, in its own root."""
    data = safe_load_pickle(osp.join(root, 'sequenceFiles', 'test', 'fixture_test_00.pkl'))
    change(data)
    path = tmp_path / 'sequenceFiles' / 'test' / 'fixture_test_00.pkl'
    path.parent.mkdir(parents=True)
    path.write_bytes(dumps_py2(data))
    return str(path)


class _Unknown:
    pass


@pytest.mark.parametrize('change, error, message', [
    (lambda d: d.pop('cam_poses'), KeyError, r"missing field\(s\) \['cam_poses'\]"),
    (lambda d: d['poses'].__setitem__(1, d['poses'][1][:, :70]), ValueError,
     r'field poses\[1\] has shape \(6, 70\), expected \(6, 72\)'),
    (lambda d: d.__setitem__('jointPositions', d['jointPositions'][:1]), ValueError,
     "disagree on the number of actors"),
    (lambda d: d.__setitem__('cam_poses', d['cam_poses'][:4]), ValueError,
     r'field cam_poses has shape \(4, 4, 4\), expected \(6, 4, 4\)'),
    (lambda d: d['genders'].__setitem__(0, 'x'), ValueError, "field genders has 'x'"),
    (lambda d: d['betas'].__setitem__(0, d['betas'][0][:5]), ValueError,
     r'field betas\[0\] has 5 values'),
    (lambda d: d['jointPositions'][0].__setitem__((2, 4), np.nan), ValueError,
     r'field jointPositions\[0\] holds NaN'),
])
def test_malformed_fields(pw3d, tmp_path, change, error, message):
    path = _rewrite(pw3d[0], tmp_path, change)
    with pytest.raises(error, match=rf'{path}: .*{message}'):
        load_pw3d_sequence(path)


def test_truncated_and_unknown_class(pw3d, tmp_path):
    src = osp.join(pw3d[0], 'sequenceFiles', 'test', 'fixture_test_00.pkl')
    cut = tmp_path / 'cut.pkl'
    cut.write_bytes(open(src, 'rb').read()[:3000])
    with pytest.raises(CorruptFileError, match=rf'{cut}: cannot unpickle \(truncated'):
        load_pw3d_sequence(str(cut))
    data = safe_load_pickle(src)
    data['texture_maps'] = [_Unknown()]
    evil = tmp_path / 'unknown.pkl'
    evil.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(UnsafePickleError, match=rf'refusing to unpickle \S+_Unknown from {evil}'):
        load_pw3d_sequence(str(evil))
    out = tmp_path / 'not_a_dict.pkl'
    out.write_bytes(dumps_py2([1, 2]))
    with pytest.raises(ValueError, match='expected the 3DPW sequence dict, found a list'):
        load_pw3d_sequence(str(out))


def test_refusals_leave_everything_untouched(pw3d, tmp_path):
    root, _ = pw3d
    before = tree_digest(root)
    with pytest.raises(ValueError, match='refusing to write inside the input'):
        convert_pw3d(root, osp.join(root, 'annotations'), splits=('test', ))
    out = tmp_path / 'pw3d_test.npz'
    out.write_bytes(b'user data')
    with pytest.raises(FileExistsError, match='pass overwrite=True'):
        convert_pw3d(root, str(tmp_path), splits=('test', ))
    assert out.read_bytes() == b'user data' and tree_digest(root) == before
    convert_pw3d(root, str(tmp_path), splits=('test', ), overwrite=True)
    assert len(load_video_annotations(str(out))['img_path']) == 24
    with pytest.raises(FileNotFoundError, match=r'sequenceFiles/validation: no such folder'):
        convert_pw3d(root, str(tmp_path / 'v'), splits=('validation', ))
    assert tree_digest(root) == before


def test_missing_images_are_reported(pw3d, tmp_path):
    path = _rewrite(pw3d[0], tmp_path, lambda d: None)
    with pytest.raises(FileNotFoundError,
                       match=r'12 of its frames have no image, e.g. .*image_00000.jpg'):
        convert_pw3d_split(str(tmp_path), 'test')
    got = convert_pw3d_split(str(tmp_path), 'test', check_images=False)
    assert len(got['img_path']) == 12 and osp.isfile(path)
