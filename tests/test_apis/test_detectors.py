"""Detectors: the box file and the whole-image detector (the HOG detector's rescaling
and the mmdet detector's error path: test_bad_inputs.py; HOG on real video:
test_real_videos.py)."""
import json

import numpy as np

from unspat_mm.apis import JsonBoxes, WholeImageDetector


def test_box_file_formats_and_the_whole_image(tmp_path):
    path = tmp_path / 'boxes.json'
    path.write_text(json.dumps(dict(bbox_format='cxcywh', frames=[
        dict(frame_id=3, bboxes=[[50, 60, 20, 40]], scores=[0.7], track_ids=[9])])))
    boxes = JsonBoxes(str(path))
    np.testing.assert_allclose(boxes(None, 3), [[40, 40, 60, 80, 0.7]])
    assert boxes(None, 2).shape == (0, 5) and boxes.with_track_ids
    path.write_text(json.dumps(dict(frames=[dict(frame_id=0, bboxes=[[5, 5, 1, 9]])])))
    try:
        JsonBoxes(str(path))
    except ValueError as err:
        assert 'frame 0 has a box with x2 <= x1' in str(err)
    else:
        raise AssertionError('a box with x2 < x1 was accepted')
    np.testing.assert_array_equal(WholeImageDetector()(np.zeros((7, 9, 3), np.uint8)),
                                  [[0, 0, 9, 7, 1]])
