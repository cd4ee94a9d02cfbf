"""The unspat-mm-video-v1 annotation format: round trip, validation messages, safety."""
import os
import re
import warnings
import zipfile

import numpy as np
import pytest

from unspat_mm.datasets.annotation_format import (VIDEO_ANNOTATION_FORMAT,
                                                  load_video_annotations,
                                                  save_video_annotations,
                                                  validate_video_annotations)


def make_arrays(num=5, seed=0):
    """A valid annotation dict: two tracks, random numbers (float64 / int32 on purpose)."""
    rng = np.random.default_rng(seed)
    seq = np.array(['seq_a/actor0'] * 3 + ['seq_b/actor1'] * (num - 3))
    frame = np.r_[np.arange(3), np.arange(num - 3)].astype(np.int32)
    return dict(
        img_path=np.array([f'imageFiles/{s.split("/")[0]}/image_{f:05d}.jpg'
                           for s, f in zip(seq, frame)]),
        sequence_id=seq, frame_index=frame,
        bbox=np.c_[rng.uniform(50, 100, (num, 2)), rng.uniform(20, 60, (num, 2))],
        keypoints2d=rng.uniform(0, 200, (num, 29, 2)),
        keypoints2d_valid=(rng.uniform(size=(num, 29)) > .3).astype(np.float64),
        keypoints3d=rng.normal(0, .3, (num, 29, 3)),
        keypoints3d_valid=np.ones((num, 29)),
        theta=rng.normal(0, .2, (num, 72)), betas=rng.normal(0, 1, (num, 10)),
        smpl_valid=np.ones(num), valid=np.array([1, 0, 1, 1, 1][:num]),
        gender=np.array(['male'] * num), cam_intrinsics=np.tile(np.eye(3), (num, 1, 1)))


def test_round_trip(tmp_path):
    arrays = make_arrays()
    path = str(tmp_path / 'ann.npz')
    save_video_annotations(path, arrays, '3dpw')
    assert sorted(os.listdir(tmp_path)) == ['ann.npz']  # no temp file left behind
    # loads without pickles, as the format promises
    with np.load(path, allow_pickle=False) as raw:
        assert str(raw['format']) == VIDEO_ANNOTATION_FORMAT
    out = load_video_annotations(path)
    assert str(out['dataset_name']) == '3dpw'
    assert set(out) == set(arrays) | {'format', 'dataset_name'}
    for key, value in arrays.items():
        if value.dtype.kind == 'U':
            assert out[key].tolist() == value.tolist(), key
        else:
            np.testing.assert_allclose(out[key], value, rtol=1e-6, atol=1e-6, err_msg=key)
    assert out['bbox'].dtype == np.float32 and out['frame_index'].dtype == np.int64
    assert out['valid'].dtype == bool and out['valid'].tolist() == [True, False, True, True,
                                                                   True]


def _field_error(arrays, source='SRC'):
    with pytest.raises((KeyError, ValueError)) as info:
        validate_video_annotations(arrays, source)
    return str(info.value)


def _full(arrays, dataset_name='h36m'):
    return dict(arrays, format=np.array(VIDEO_ANNOTATION_FORMAT),
                dataset_name=np.array(dataset_name))


@pytest.mark.parametrize('change, pattern', [
    (lambda a: a.pop('bbox'), r"SRC: missing field\(s\) \['bbox'\]"),
    (lambda a: a.update(keypoint2d=a['keypoints2d']), r"SRC: unknown field\(s\) \['keypoint2d'\]"),
    (lambda a: a.update(format=np.array('unspat-mm-video-v0')),
     r"SRC: field 'format' is 'unspat-mm-video-v0', expected 'unspat-mm-video-v1'"),
    (lambda a: a.update(keypoints2d=a['keypoints2d'][:, :17]),
     r"SRC: field 'keypoints2d' has shape \(5, 17, 2\), expected \(N, 29, 2\) float with N = 5"),
    (lambda a: a.update(theta=a['theta'][:4]),
     r"SRC: field 'theta' has shape \(4, 72\), expected \(N, 72\) float with N = 5"),
    (lambda a: a.update(betas=a['betas'].astype(str)),
     r"SRC: field 'betas' has dtype <U\d+, expected \(N, 10\) float"),
    (lambda a: a['keypoints3d'].__setitem__((2, 4, 1), np.nan),
     r"SRC: field 'keypoints3d' has a non-finite value \(NaN/inf\) at row 2"),
    (lambda a: a['keypoints2d_valid'].__setitem__((3, 0), .5),
     r"SRC: field 'keypoints2d_valid' must hold only 0/1, got .* at row 3"),
    (lambda a: a['bbox'].__setitem__((1, 3), 0.),
     r"SRC: field 'bbox' has a non-positive width/height at row 1"),
    (lambda a: a.update(frame_index=np.array([0, 1, 1, 0, 1])),
     r"SRC: fields 'sequence_id'/'frame_index' repeat \('seq_a/actor0', 1\)"),
    (lambda a: a.update(img_path=np.array(['/abs/x.jpg'] * 5)),
     r"SRC: field 'img_path' must be relative to the dataset's data_root"),
    (lambda a: a.update(gender=np.array(['m'] * 5)), r"SRC: field 'gender' has 'm'"),
    (lambda a: a.update(sequence_id=np.array(['a', 'b', 'c', 'd', None], dtype=object)),
     r"SRC: field 'sequence_id' is an object array; the format is pickle-free"),
    (lambda a: a.update(img_path=np.array([''] + ['x.jpg'] * 4)),
     r"SRC: field 'img_path' is empty at row 0"),
])
def test_malformed_messages(change, pattern):
    arrays = _full(make_arrays())
    change(arrays)
    assert re.search(pattern, _field_error(arrays)), _field_error(arrays)


def test_save_validates_before_casting(tmp_path):
    arrays = make_arrays()
    arrays['valid'] = np.array([1, 0, .5, 1, 1])  # astype(bool) would make .5 True
    with pytest.raises(ValueError, match=r"field 'valid' must hold only 0/1, got 0.5 at row 2"):
        save_video_annotations(str(tmp_path / 'a.npz'), arrays, 'h36m')
    arrays = make_arrays()
    arrays['keypoints3d'][0, 0, 0] = 1e300  # finite in float64, inf in float32
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the error below, not numpy's cast warning, reports it
        with pytest.raises(ValueError, match="'keypoints3d' has a non-finite value"):
            save_video_annotations(str(tmp_path / 'a.npz'), arrays, 'h36m')
    assert os.listdir(tmp_path) == []  # nothing written by a failed save
    with pytest.raises(ValueError, match="'dataset_name' is 'h36m' but dataset_name='3dpw'"):
        save_video_annotations(str(tmp_path / 'a.npz'), _full(make_arrays()), '3dpw')


def test_refuses_overwrite(tmp_path):
    path = str(tmp_path / 'ann.npz')
    save_video_annotations(path, make_arrays(seed=0), '3dpw')
    before = open(path, 'rb').read()
    with pytest.raises(FileExistsError, match=re.escape(f'{path} already exists; pass '
                                                        'overwrite=True')):
        save_video_annotations(path, make_arrays(seed=1), '3dpw')
    assert open(path, 'rb').read() == before
    save_video_annotations(path, make_arrays(seed=1), '3dpw', overwrite=True)
    np.testing.assert_allclose(load_video_annotations(path)['theta'],
                               make_arrays(seed=1)['theta'], rtol=1e-6, atol=1e-7)
    assert sorted(os.listdir(tmp_path)) == ['ann.npz']
    with pytest.raises(ValueError, match='must end with .npz'):
        save_video_annotations(str(tmp_path / 'ann.npy'), make_arrays(), '3dpw')


def test_truncated_file(tmp_path):
    path = str(tmp_path / 'ann.npz')
    save_video_annotations(path, make_arrays(), 'h36m')
    data = open(path, 'rb').read()
    for cut in (len(data) // 2, 100):
        bad = tmp_path / f'cut{cut}.npz'
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=re.escape(f'{bad}: not a readable .npz file '
                                                       '(truncated or corrupt?)')):
            load_video_annotations(str(bad))
    with pytest.raises(FileNotFoundError, match='missing.npz: annotation file not found'):
        load_video_annotations(str(tmp_path / 'missing.npz'))


def test_corrupt_member(tmp_path):
    """A damaged array inside an intact archive: the error names the field."""
    path = tmp_path / 'ann.npz'
    save_video_annotations(str(path), make_arrays(), 'h36m')
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo('theta.npy')
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start:start + 8] = b'\xff' * 8  # payload changed, CRC now wrong
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"field 'theta' cannot be read"):
        load_video_annotations(str(path))


def test_object_array_refused_on_load(tmp_path):
    path = str(tmp_path / 'pickled.npz')
    arrays = _full(make_arrays())
    arrays['smpl'] = np.array([{'betas': np.zeros(10)}], dtype=object)  # HumanData-style
    np.savez(path, allow_pickle=True, **arrays)
    with pytest.raises(ValueError, match=re.escape(f"{path}: field 'smpl' is an object array "
                                                   '(it needs a pickle to load); the format '
                                                   'is pickle-free')):
        load_video_annotations(path)


def test_load_validates(tmp_path):
    path = str(tmp_path / 'bad.npz')
    arrays = _full(make_arrays())
    del arrays['smpl_valid']
    np.savez(path, **arrays)
    with pytest.raises(KeyError, match=re.escape(f"{path}: missing field(s) ['smpl_valid']")):
        load_video_annotations(path)
