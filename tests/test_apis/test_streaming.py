"""Streaming windows: the ring buffer emits exactly the test datasets' windows, the
middle-frame neck equals the neck, and streaming equals re-running the whole model on
every window."""
import json

import numpy as np
import pytest
import torch
from mmengine.config import Config

from apis_helpers import EMBEDDED, build_model
from unspat_mm.apis import CropMaker, TrackWindowBuffer, UNSPATInferencer, encode_middle_frame
from unspat_mm.apis.model_loading import inference_settings
from unspat_mm.datasets.base_video_dataset import window_rows
from unspat_mm.models.utils import axis_angle_to_matrix, geodesic_distance
from unspat_mm.registry import MODELS


@pytest.mark.parametrize('num_frames,interval,length', [(4, 8, 25), (16, 1, 40), (5, 3, 7),
                                                        (4, 8, 1)])
@pytest.mark.parametrize('causal', [False, True])
def test_ring_buffer_emits_every_frame_once_with_the_dataset_window(num_frames, interval,
                                                                    length, causal):
    start = 100
    buf = TrackWindowBuffer(start, num_frames, interval, causal)
    emitted = {}
    for f in range(start, start + length):
        # feature of frame f: the constant f, so a window's content names its frames
        for target, window, rows in buf.push(f, torch.full((2, 1, 1), float(f))):
            assert target not in emitted
            emitted[target] = (window[:, 0, 0, 0].numpy(), rows, f)
    for target, window, rows in buf.finish():
        emitted[target] = (window[:, 0, 0, 0].numpy(), rows, start + length - 1)
    assert sorted(emitted) == list(range(start, start + length))
    for target, (content, rows, newest) in emitted.items():
        stop = target + 1 if causal else start + length
        expected = window_rows(target, start, stop, num_frames, interval)
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(content, expected)  # read from the right slots
        lookahead = 0 if causal else (num_frames - 1 - num_frames // 2) * interval
        # emitted as soon as its last frame arrived, or when the track ended
        assert newest == min(target + lookahead, start + length - 1)
    assert buf.capacity == (num_frames // 2) * interval + lookahead + 1


def test_ring_buffer_refuses_frames_out_of_order():
    buf = TrackWindowBuffer(0, 4, 2)
    buf.push(0, torch.zeros(1))
    with pytest.raises(ValueError, match='expected 1, got 2'):
        buf.push(2, torch.zeros(1))


@pytest.mark.parametrize('config', ['configs/unspat_synthetic.py', 'configs/unspat_3dpw.py'])
def test_middle_frame_neck_equals_the_neck(config, one_thread):
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    neck = MODELS.build(cfg.model.neck).eval()
    with torch.no_grad():  # non-zero biases (the folded last layer handles them) and SAM
        for param in neck.parameters():  # warps that are not the identity
            param.add_(0.05 * torch.randn_like(param))
    t = inference_settings(cfg).num_frames
    feats = torch.randn(2, t, neck.in_channels, *neck.feat_size)
    with torch.no_grad():
        full = neck(feats)
        middle, uncertainty = encode_middle_frame(neck, feats)
    torch.testing.assert_close(middle, full.feats, atol=1e-5, rtol=0)
    torch.testing.assert_close(uncertainty, full.uncertainty, atol=0, rtol=0)
    assert middle.is_contiguous()


def _naive(model, crop, frames, boxes, targets, start, stop, causal):
    """The whole model (backbone included) re-run on every window."""
    s = inference_settings(Config.fromfile(EMBEDDED))
    out = []
    for f in targets:
        rows = window_rows(f, start, f + 1 if causal else stop, s.num_frames, s.frame_interval)
        crops = np.stack([crop(frames[r][..., ::-1], boxes[r])[0] for r in rows])
        clip = torch.from_numpy(crops).permute(0, 3, 1, 2)
        with torch.no_grad():
            inputs = model.data_preprocessor(dict(inputs=[clip]))['inputs']
            out.append(model(inputs, mode='tensor'))
    return out


@pytest.mark.parametrize('causal', [False, True])
def test_streaming_equals_running_the_model_on_every_window(causal, synthetic_video,
                                                            standin_model_dir, embedded_checkpoint,
                                                            one_thread):
    """Frames 0-19 of track 4 of the synthetic video, its jittered boxes."""
    frames = synthetic_video['frames'][:20]
    boxes = [np.asarray(b['bboxes'][0]) for b in json.load(
        open(synthetic_video['boxes_json']))['frames'][:20]]
    inferencer = UNSPATInferencer(EMBEDDED, embedded_checkpoint[0],
                                  det=synthetic_video['boxes_json'],
                                  body_model_dir=standin_model_dir, causal=causal)
    streamed = [r['predictions'][0] for r in inferencer(frames, show_progress=False)]
    model = build_model(EMBEDDED, standin_model_dir)
    naive = _naive(model, CropMaker(inference_settings(Config.fromfile(EMBEDDED)).crop_cfg),
                   frames, boxes, range(20), 0, 20, causal)
    for s, n in zip(streamed, naive):
        # measured: network outputs 2e-7, vertices and joints 5e-6 m, rotations 7e-5 rad
        for key in ('keypoints3d', 'camera', 'betas', 'sigma'):
            np.testing.assert_allclose(s[key], n[key][0].numpy(), atol=1e-6, rtol=0, err_msg=key)
        for key in ('vertices', 'joints24'):
            np.testing.assert_allclose(s[key], n[key][0].numpy(), atol=1e-5, rtol=0, err_msg=key)
        # The IK amplifies the keypoints' float rounding (different batch shapes, the
        # folded last layer): short bones and rotations chained down the tree give about
        # 100 rad per metre, even on plausible poses (2e-7 m of keypoint noise moves
        # them by up to 2e-5 rad), so 1e-5 rad would need bit-identical keypoints.
        # Compared as rotations: axis-angle itself is ill-conditioned near pi.
        angles = geodesic_distance(axis_angle_to_matrix(torch.from_numpy(s['theta']).view(-1, 3)),
                                   axis_angle_to_matrix(n['theta'][0].view(-1, 3)))
        assert angles.max() < 2e-4
    if causal:  # the causal window ignores the future: not the centred result
        centred = _naive(model, CropMaker(inference_settings(Config.fromfile(EMBEDDED)).crop_cfg),
                         frames, boxes, [5], 0, 20, False)[0]
        assert np.abs(streamed[5]['keypoints3d'] - centred['keypoints3d'][0].numpy()).max() > 1e-3
