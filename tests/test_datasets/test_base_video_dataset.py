"""Windows, padding, filtering and draw ids of BaseVideoDataset, on a toy dataset."""
import pickle

import numpy as np
import pytest

from unspat_mm.datasets import BaseVideoDataset, window_rows
from unspat_mm.registry import DATASETS

LENGTHS = {'b': 5, 'a': 1, 'c': 20}  # sequence name -> number of frames


@DATASETS.register_module(force=True)
class ToyVideoDataset(BaseVideoDataset):
    """Frames of several sequences in shuffled row order; image m is filled with m."""

    def __init__(self, invalid=(), drop=(), **kwargs):
        self.invalid, self.drop = set(invalid), set(drop)
        super().__init__(**kwargs)

    def load_annotations(self):
        rows = [(s, f) for s, n in LENGTHS.items() for f in range(n)]
        rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
        ann = dict(sequence_id=np.array([s for s, _ in rows]),
                   frame_index=np.array([10 * f for _, f in rows]),  # frame numbers with gaps
                   img_index=np.arange(len(rows)),
                   bbox=np.zeros((len(rows), 4)),
                   valid=np.array([r not in self.invalid for r in rows]))
        for key in self.drop:
            ann.pop(key)
        return ann

    def load_images(self):
        n = sum(LENGTHS.values())
        return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3))


def _windows(ds):
    """(sequence, frame index of every window frame) of each item, via the raw info."""
    out = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        out.append((info['sequence_id'], info['frame_index'], info['window_frame_indices']))
    return out


@pytest.mark.parametrize('num_frames', [1, 4, 5, 16])
def test_every_frame_is_a_middle_frame_exactly_once(num_frames):
    ds = ToyVideoDataset(num_frames=num_frames, test_mode=True)
    assert len(ds) == sum(LENGTHS.values())
    windows = _windows(ds)
    targets = [(s, f) for s, f, _ in windows]
    assert sorted(targets) == sorted((s, 10 * f) for s, n in LENGTHS.items() for f in range(n))
    for seq, frame, frames in windows:
        assert len(frames) == num_frames
        assert frames[num_frames // 2] == frame  # the middle is the target
        n = LENGTHS[seq]
        expected = np.clip(frame // 10 + np.arange(num_frames) - num_frames // 2, 0, n - 1) * 10
        np.testing.assert_array_equal(frames, expected)  # edge frames repeated


def test_padding_and_rows():
    np.testing.assert_array_equal(window_rows(3, 2, 7, 6), [2, 2, 2, 3, 4, 5])
    np.testing.assert_array_equal(window_rows(6, 2, 7, 4), [4, 5, 6, 6])
    ds = ToyVideoDataset(num_frames=6, test_mode=True)
    first_c = next(i for i, w in enumerate(_windows(ds)) if w[0] == 'c' and w[1] == 0)
    info = ds.get_data_info(first_c)
    np.testing.assert_array_equal(info['window_frame_indices'], [0, 0, 0, 0, 10, 20])
    # the image rows follow the frames (rows were sorted by sequence, then frame)
    assert info['center_index'] == 3
    assert len(set(info['img_index'][:4].tolist())) == 1


def test_frame_interval_spreads_the_window_and_keeps_its_middle():
    np.testing.assert_array_equal(window_rows(10, 0, 24, 4, frame_interval=4), [2, 6, 10, 14])
    np.testing.assert_array_equal(window_rows(1, 0, 24, 4, frame_interval=4), [0, 0, 1, 5])
    ds = ToyVideoDataset(num_frames=4, frame_interval=3, test_mode=True)
    assert len(ds) == sum(LENGTHS.values())  # still every frame a middle frame once
    for seq, frame, frames in _windows(ds):
        expected = np.clip(frame // 10 + 3 * (np.arange(4) - 2), 0, LENGTHS[seq] - 1) * 10
        np.testing.assert_array_equal(frames, expected)
    with pytest.raises(ValueError, match='frame_interval must be >= 1'):
        ToyVideoDataset(num_frames=4, frame_interval=0)


def test_stride_and_valid_filter():
    ds = ToyVideoDataset(num_frames=3, stride=3)
    assert [w[1] for w in _windows(ds) if w[0] == 'c'] == [0, 30, 60, 90, 120, 150, 180]
    assert len(ds) == 2 + 1 + 7  # ceil(5/3) + 1 + ceil(20/3)
    invalid = [('c', 0), ('c', 3), ('b', 1)]
    train = ToyVideoDataset(num_frames=3, invalid=invalid, filter_cfg=dict(valid_only=True))
    assert len(train) == sum(LENGTHS.values()) - 3
    assert all(train.get_data_info(i)['valid'] for i in range(len(train)))
    test = ToyVideoDataset(num_frames=3, invalid=invalid, filter_cfg=dict(valid_only=True),
                           test_mode=True)
    assert len(test) == sum(LENGTHS.values())
    assert sum(not test.get_data_info(i)['valid'] for i in range(len(test))) == 3


def test_defaults_filled_in():
    ds = ToyVideoDataset(num_frames=2)
    info = ds.get_data_info(0)
    assert info['keypoints3d'].shape == (2, 29, 3) and not info['keypoints3d_valid'].any()
    assert info['theta'].shape == (2, 72) and not info['smpl_valid'].any()
    assert info['keypoints2d'].shape == (2, 29, 2) and not info['keypoints2d_valid'].any()


def test_draw_ids():
    ds = ToyVideoDataset(num_frames=3, seed=7, pipeline=[lambda r: r])
    n = len(ds)
    first, later = ds[4], ds[2 * n + 4]
    assert first['sequence_id'] == later['sequence_id']
    assert first['frame_index'] == later['frame_index']
    assert (first['epoch'], later['epoch']) == (0, 2)
    assert later['rng'].integers(1 << 30) == np.random.default_rng([7, 2 * n + 4]).integers(
        1 << 30)
    assert ds[4]['rng'].uniform() == ds[4]['rng'].uniform()  # a fresh stream per call
    assert ds[4]['rng'].uniform() != ds[n + 4]['rng'].uniform()
    with pytest.raises(IndexError):
        ds[-1]


def test_errors_name_the_problem():
    with pytest.raises(KeyError, match='bbox'):
        ToyVideoDataset(drop=('bbox', ))
    with pytest.raises(KeyError, match='img_path'):
        ToyVideoDataset(drop=('img_index', ))
    with pytest.raises(ValueError, match='num_frames'):
        ToyVideoDataset(num_frames=0)
    with pytest.raises(RuntimeError, match='must not return None'):
        ToyVideoDataset(pipeline=[lambda r: None])[0]


def test_images_are_not_pickled():
    ds = ToyVideoDataset(num_frames=2)
    assert ds.images is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._images is None
    np.testing.assert_array_equal(clone.images, ds.images)
