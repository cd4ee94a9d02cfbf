"""Bad inputs: each gives a clear error and leaves no partial output; greyscale and 4K
frames work."""
import json
import os

import cv2
import numpy as np
import pytest

from apis_helpers import EMBEDDED, build_model, save_checkpoint
from unspat_mm.apis import HOGPersonDetector, UNSPATInferencer, build_detector


@pytest.fixture(scope='module')
def inferencer(embedded_checkpoint, standin_model_dir):
    return UNSPATInferencer(EMBEDDED, embedded_checkpoint[0], det='whole_image',
                            body_model_dir=standin_model_dir, min_track_frames=2)


def _write_video(path, frames, fourcc='MJPG', fps=10):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def _frames(n, size=(64, 48), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)]


def _assert_nothing_written(out_dir):
    assert not out_dir.exists()
    assert not [n for n in os.listdir(out_dir.parent) if '.tmp-' in n]


@pytest.mark.parametrize('case,error,match', [
    ('missing', FileNotFoundError, 'does not exist'),
    ('not_a_video', ValueError, 'not a readable video'),
    ('truncated', ValueError, 'truncated'),
    ('one_frame', ValueError, 'at least 2 frames'),
    ('empty_folder', ValueError, 'holds no images'),
    ('mixed_sizes', ValueError, 'all frames of a video must have one size'),
])
def test_bad_videos_raise_clear_errors_and_write_nothing(inferencer, tmp_path, case, error,
                                                         match):
    if case == 'missing':
        source = str(tmp_path / 'nope.mp4')
    elif case == 'not_a_video':
        source = tmp_path / 'notes.mp4'
        source.write_text('these are not frames\n' * 100)
        source = str(source)
    elif case == 'truncated':
        source = _write_video(tmp_path / 'cut.avi', _frames(30))
        size = os.path.getsize(source)
        with open(source, 'r+b') as f:
            f.truncate(size // 2)
    elif case == 'one_frame':
        source = _write_video(tmp_path / 'one.avi', _frames(1))
    elif case == 'empty_folder':
        (tmp_path / 'empty').mkdir()
        source = str(tmp_path / 'empty')
    else:
        source = _frames(3) + _frames(1, size=(32, 32))
    out_dir = tmp_path / 'out'
    with pytest.raises(error, match=match):
        list(inferencer(source, out_dir=str(out_dir), show_progress=False))
    _assert_nothing_written(out_dir)


def test_a_failure_midway_removes_the_partial_output(inferencer, tmp_path, monkeypatch):
    calls = []

    def failing(windows):
        calls.append(1)
        raise RuntimeError('simulated failure')
    monkeypatch.setattr(inferencer.backend, 'predict', failing)
    out_dir = tmp_path / 'out'
    with pytest.raises(RuntimeError, match='simulated'):
        list(inferencer(_frames(12), out_dir=str(out_dir), render=True, show_progress=False))
    assert calls
    _assert_nothing_written(out_dir)


def test_greyscale_frames_give_the_results_of_their_colour_copy(inferencer):
    grey = [f[..., 0] for f in _frames(6)]
    colour = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in grey]
    a = list(inferencer(grey, show_progress=False))
    b = list(inferencer(colour, show_progress=False))
    assert len(a) == 6 and all(len(r['predictions']) == 1 for r in a)
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra['predictions'][0]['keypoints3d'],
                                      rb['predictions'][0]['keypoints3d'])


def test_no_person_gives_empty_tracks_and_says_so(embedded_checkpoint, standin_model_dir,
                                                  tmp_path):
    """Documented choice: a video without people is not an error; the results hold no
    track and the log says NO PERSON TRACKED."""
    inferencer = UNSPATInferencer(EMBEDDED, embedded_checkpoint[0], det='hog',
                                  body_model_dir=standin_model_dir)
    blank = [np.full((120, 160, 3), 127, np.uint8)] * 4
    out_dir = tmp_path / 'out'
    results = list(inferencer(blank, out_dir=str(out_dir), render=True, show_progress=False))
    assert [r['predictions'] for r in results] == [[]] * 4
    assert sorted(os.listdir(out_dir)) == ['results.json', 'vis.mp4']
    meta = json.loads((out_dir / 'results.json').read_text())['meta_info']
    assert meta['tracks'] == [] and meta['notes'].startswith('NO PERSON TRACKED')


def test_hog_detects_on_a_rescaled_4k_frame(monkeypatch):
    detector = HOGPersonDetector(detect_height=720)
    seen = []
    original = detector.hog.detectMultiScale

    def spy(img, **kwargs):
        seen.append(img.shape)
        return np.array([[10, 20, 64, 128]]), np.array([[1.0]])
    monkeypatch.setattr(detector, 'hog', type('H', (), {'detectMultiScale': staticmethod(spy)}))
    boxes = detector(np.zeros((2160, 3840, 3), np.uint8))
    assert seen == [(720, 1280, 3)]
    # boxes come back in the 4K frame's pixels (x3)
    np.testing.assert_allclose(boxes[0, :4], [30, 60, 30 + 192, 60 + 384])
    assert 0.5 < boxes[0, 4] < 1 and callable(original)


def test_a_4k_video_runs(inferencer, tmp_path):
    frames = [np.full((2160, 3840, 3), 60, np.uint8)] * 2
    results = list(inferencer(frames, show_progress=False))
    (person, ) = results[1]['predictions']
    np.testing.assert_allclose(person['bbox'], [0, 0, 3840, 2160])


def test_a_checkpoint_of_another_config_is_refused(standin_model_dir, tmp_path):
    other = save_checkpoint(build_model('configs/_base_/models/unspat_tiny.py',
                                        standin_model_dir), tmp_path / 'tiny.pth')
    with pytest.raises(ValueError, match=r'does not fit the model of config '
                       r"'unspat_synthetic'.*shape mismatches.*Pass the config it was "
                       'trained with'):
        UNSPATInferencer(EMBEDDED, other, det='whole_image', body_model_dir=standin_model_dir)


def test_unknown_detectors_are_refused():
    with pytest.raises(ValueError, match="Unknown detector 'yolo'.*hog, whole_image"):
        build_detector('yolo')
    with pytest.raises(FileNotFoundError, match='mmdet detector config'):
        build_detector('missing_rtmdet.py', 'missing.pth')
    with pytest.raises(FileNotFoundError, match='Box file'):
        build_detector('missing_boxes.json')
