"""Tracking: mmdet's ByteTracker links detections, gaps are bridged, short tracks dropped,
crop boxes smoothed (centred or causal)."""
import numpy as np

from unspat_mm.apis import build_tracks, run_byte_tracker, smooth_boxes


def _two_walkers(num=30, gap=range(12, 15)):
    """Person A walks right, person B left, 200 px apart; A is missed in ``gap``; a
    one-frame false positive appears at frame 20."""
    dets = []
    for f in range(num):
        boxes = []
        if f not in gap:
            boxes.append([50 + 3 * f, 100, 110 + 3 * f, 260, 0.9])
        boxes.append([400 - 2 * f, 120, 460 - 2 * f, 280, 0.85])
        if f == 20:
            boxes.append([600, 10, 620, 40, 0.8])
        dets.append(np.array(boxes, np.float64))
    return dets


def test_byte_tracker_keeps_ids_bridges_gaps_and_drops_short_tracks():
    tracks = build_tracks(run_byte_tracker(_two_walkers()), min_track_frames=5, smooth_sigma=0)
    assert len(tracks) == 2  # the one-frame false positive is dropped
    a, b = tracks
    assert (a.track_id, b.track_id) == (0, 1)
    np.testing.assert_array_equal(a.frame_ids, np.arange(30))
    np.testing.assert_array_equal(b.frame_ids, np.arange(30))
    # A's three missed frames are filled by interpolation, marked as not detected
    assert a.detected.sum() == 27 and not a.detected[12:15].any()
    np.testing.assert_allclose(a.bboxes[12:15, 0], 50 + 3 * np.arange(12, 15), atol=1e-3)
    np.testing.assert_allclose(b.bboxes[:, 0], 400 - 2 * np.arange(30), atol=1e-3)
    np.testing.assert_allclose(a.crop_boxes[0], [80, 180, 60, 160], atol=1e-3)


def test_smoothing_keeps_constant_boxes_and_causal_ignores_the_future():
    boxes = np.tile([100., 50., 40., 80.], (20, 1))
    np.testing.assert_allclose(smooth_boxes(boxes, 2.), boxes)
    np.testing.assert_allclose(smooth_boxes(boxes, 2., causal=True), boxes)
    jumpy = boxes.copy()
    jumpy[15:, 0] += 30
    centred, causal = smooth_boxes(jumpy, 2.), smooth_boxes(jumpy, 2., causal=True)
    assert centred[13, 0] > 100.5  # a centred filter sees the jump coming
    np.testing.assert_allclose(causal[:15], boxes[:15])  # a causal one does not
    assert 100 < causal[16, 0] < 130
    # sizes are smoothed in log space and stay positive
    assert (smooth_boxes(np.abs(np.random.default_rng(0).normal(50, 30, (20, 4))) + 1,
                         3.)[:, 2:] > 0).all()
