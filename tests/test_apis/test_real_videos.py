"""Real videos (fetched once into data/test_videos through pip and apt, see
real_videos.py): sports2d's two walkers and OpenCV's vtest pedestrians, with the default
HOG detector and ByteTracker; every input frame gets an overlay frame."""
import json

import cv2
import numpy as np
import pytest

import real_videos
from apis_helpers import EMBEDDED
from unspat_mm.apis import FrameSource, HOGPersonDetector, UNSPATInferencer


def _video(fetch):
    try:
        return fetch()
    except real_videos.FetchError as err:  # no network / no apt: say so, loudly
        pytest.skip(f'real test video unavailable: {err}')


def _run(path, max_frames, checkpoint, model_dir, out_dir):
    inferencer = UNSPATInferencer(EMBEDDED, checkpoint, det='hog', body_model_dir=model_dir)
    results = list(inferencer(path, out_dir=str(out_dir), max_frames=max_frames, render=True,
                              show_progress=False))
    data = json.loads((out_dir / 'results.json').read_text())
    cap = cv2.VideoCapture(str(out_dir / 'vis.mp4'))
    count = 0
    while cap.read()[0]:
        count += 1
    return results, data, count


def _spans(data):
    """{track_id: frames it appears in}, from results.json."""
    spans = {}
    for frame in data['instance_info']:
        for inst in frame['instances']:
            spans.setdefault(inst['track_id'], []).append(frame['frame_id'])
    return spans


def test_sports2d_two_walkers_give_two_long_tracks(embedded_checkpoint, standin_model_dir,
                                                   tmp_path):
    path = _video(real_videos.sports2d_video)
    results, data, count = _run(path, 30, embedded_checkpoint[0], standin_model_dir,
                                tmp_path / 'out')
    assert len(results) == count == 30  # every input frame in the overlay
    spans = _spans(data)
    long_tracks = {tid: f for tid, f in spans.items() if len(f) >= 20}
    assert len(long_tracks) == 2, {t: (f[0], f[-1]) for t, f in spans.items()}
    for frames in long_tracks.values():  # stable ids: one id over a contiguous span
        assert frames == list(range(frames[0], frames[-1] + 1))
    # the two walkers are apart: their boxes do not coincide on a shared frame
    a, b = (np.array([i['bbox'][0] for f in data['instance_info'] for i in f['instances']
                      if i['track_id'] == tid and f['frame_id'] == 20]) for tid in long_tracks)
    assert np.abs(a[0][:2] - b[0][:2]).max() > 50


def test_vtest_pedestrians_give_several_tracks(embedded_checkpoint, standin_model_dir, tmp_path):
    path = _video(real_videos.vtest_video)
    results, data, count = _run(path, 20, embedded_checkpoint[0], standin_model_dir,
                                tmp_path / 'out')
    assert len(results) == count == 20
    spans = _spans(data)
    assert len(spans) >= 3, spans
    for frames in spans.values():
        assert frames == list(range(frames[0], frames[-1] + 1))
    with np.load(tmp_path / 'out' / 'track_000.npz', allow_pickle=False) as npz:
        assert np.isfinite(npz['theta']).all()
        assert (npz['bboxes'][:, 2:] > npz['bboxes'][:, :2]).all()
        assert npz['bboxes'][:, 2].max() <= 768 + 5 and npz['bboxes'][:, 3].max() <= 576 + 5


def test_hog_finds_the_same_people_in_a_4k_copy_of_a_frame():
    path = _video(real_videos.sports2d_video)
    frame = next(iter(FrameSource(path, 2)))[1]
    big = cv2.resize(frame, (3840, 2160), interpolation=cv2.INTER_LINEAR)
    detector = HOGPersonDetector()
    native, on_4k = detector(frame), detector(big)
    assert len(native) >= 1 and len(on_4k) == len(native)
    scale = np.array([3840 / frame.shape[1], 2160 / frame.shape[0]] * 2)
    for box in native:
        expected = box[:4] * scale
        best = np.abs(on_4k[:, :4] - expected).max(1).min()
        # the same box, within 10% of its height (the two resizes interpolate differently)
        assert best < 0.1 * (expected[3] - expected[1])
