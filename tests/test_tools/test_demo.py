"""demo/unspat_demo.py end to end on a video file of the synthetic test split."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test_apis'))
from apis_helpers import EMBEDDED, build_model, make_synthetic_video, save_checkpoint  # noqa

from demo.unspat_demo import main  # noqa: E402


@pytest.fixture(scope='module')
def video(synthetic_tiny, standin_model_dir, tiny_settings, tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    data = make_synthetic_video(synthetic_tiny, standin_model_dir, tiny_settings, root)
    path = str(root / 'synthetic.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 25, (96, 96))
    for frame in data['frames']:
        writer.write(frame)
    writer.release()
    ckpt = save_checkpoint(build_model(EMBEDDED, standin_model_dir), root / 'model.pth')
    return path, data['boxes_json'], ckpt


def test_demo_writes_tracks_results_and_one_overlay_frame_per_input_frame(
        video, standin_model_dir, tmp_path, capsys):
    path, boxes, ckpt = video
    out = tmp_path / 'out'
    code = main([path, '--config', EMBEDDED, '--checkpoint', ckpt, '--out-dir', str(out),
                 '--det', boxes, '--max-frames', '30', '--render', '--smooth', '1',
                 '--body-model-dir', standin_model_dir])
    printed = capsys.readouterr().out
    assert code == 0
    assert ('trained with: experiment unit-test, dataset unspat_synthetic' in printed
            and 'STAND-IN' in printed)
    assert sorted(os.listdir(out)) == ['results.json', 'track_004.npz', 'track_005.npz',
                                       'vis.mp4']
    with np.load(out / 'track_005.npz', allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz['frame_ids'], np.arange(20, 30))
        assert npz['theta'].shape == (10, 72) and np.isfinite(npz['theta']).all()
    meta = json.loads((out / 'results.json').read_text())['meta_info']
    assert meta['num_frames'] == 30 and meta['config'] == 'unspat_synthetic'
    cap = cv2.VideoCapture(str(out / 'vis.mp4'))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 30
    # the frame and the side panel; the stand-in banner is red across the top
    assert frames[0].shape[0] == 96 and frames[0].shape[1] > 96
    top = frames[0][:6, :96].reshape(-1, 3).mean(0)
    assert top[2] > 1.5 * top[0] + 20


@pytest.mark.parametrize('args,code,message', [
    (['--det', 'yolo'], 1, "Unknown detector 'yolo'"),
    (['--det', 'rtmdet.py', '--det-checkpoint', 'rtmdet.pth'], 1, 'mmdet detector config'),
    (['--checkpoint', None], 2, '--checkpoint is required'),
    (['--video', 'missing.mp4'], 1, 'does not exist'),
])
def test_demo_errors_are_one_clear_line(video, standin_model_dir, tmp_path, capsys, args, code,
                                        message):
    path, boxes, ckpt = video
    argv = dict(video=path, checkpoint=ckpt)
    extra = []
    for key, value in zip(args[::2], args[1::2]):
        if key.lstrip('-') in argv:
            argv[key.lstrip('-')] = value
        else:
            extra += [key, value]
    cmd = [argv['video'], '--config', EMBEDDED, '--out-dir', str(tmp_path / 'out'),
           '--body-model-dir', standin_model_dir, *extra]
    if argv['checkpoint']:
        cmd += ['--checkpoint', argv['checkpoint']]
    assert main(cmd) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
