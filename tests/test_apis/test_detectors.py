"""Detectors: the box file, the whole-image detector, and the mmdet detector against
mmdet's own API on a small RTMDet with random weights (the HOG detector's rescaling and the
mmdet detector's error path: test_bad_inputs.py; HOG on real video: test_real_videos.py)."""
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unspat_mm.apis import JsonBoxes, MMDetPersonDetector, WholeImageDetector, build_detector

from apis_helpers import EMBEDDED


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


# -- the mmdet detector, for real: a small RTMDet built from an mmdet config ---------------
# RTMDet-tiny's architecture at an eighth of its width and a 128-pixel input: only pure
# torch layers and the NMS that unspat_mm/compat/mmcv_ops.py provides, a few seconds on CPU.
RTMDET_CONFIG = """
default_scope = 'mmdet'
act = dict(type='SiLU', inplace=True)
model = dict(
    type='RTMDet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                           std=[57.375, 57.12, 58.395], bgr_to_rgb=False),
    backbone=dict(type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=0.167,
                  widen_factor=0.125, channel_attention=True, norm_cfg=dict(type='BN'),
                  act_cfg=act),
    neck=dict(type='CSPNeXtPAFPN', in_channels=[32, 64, 128], out_channels=32,
              num_csp_blocks=1, expand_ratio=0.5, norm_cfg=dict(type='BN'), act_cfg=act),
    bbox_head=dict(
        type='RTMDetSepBNHead', num_classes=80, in_channels=32, stacked_convs=1,
        feat_channels=32, with_objectness=False, exp_on_reg=False, share_conv=True,
        pred_kernel_size=1, norm_cfg=dict(type='BN'), act_cfg=act,
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        bbox_coder=dict(type='DistancePointBBoxCoder'),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    test_cfg=dict(nms_pre=200, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.6), max_per_img=40))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='Pad', size=(128, 128), pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]
test_dataloader = dict(dataset=dict(type='CocoDataset', data_root='', ann_file='',
                                    data_prefix=dict(img=''), test_mode=True,
                                    pipeline=test_pipeline))
"""


@pytest.fixture(scope='module')
def rtmdet(tmp_path_factory):
    """``(config, checkpoint)`` of a randomly initialised small RTMDet whose class scores
    are spread over labels 0 (person), 2 and 15 around 0.5, so that both of the person
    detector's filters, label and score, have something to remove."""
    import torch
    from mmdet.apis import init_detector
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    root = tmp_path_factory.mktemp('rtmdet')
    config = root / 'rtmdet_small.py'
    config.write_text(RTMDET_CONFIG)
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # 'checkpoint is None, use COCO classes'
        model = init_detector(str(config), None, device='cpu')
    with torch.no_grad():  # initialised, the head's outputs hardly vary
        for name, param in model.bbox_head.named_parameters():
            if name.startswith('rtm_cls'):
                if name.endswith('weight'):
                    param.mul_(2000)  # class logits with a spread of about 1
                else:
                    param.fill_(-8.)
                    param[[0, 2, 15]] = torch.tensor([0., -0.2, 0.1])
            if name.startswith('rtm_reg'):  # boxes about 6 strides wide, none inverted
                param.mul_(0.3)
                if name.endswith('bias'):
                    param.add_(3.)
    checkpoint = root / 'rtmdet_small.pth'
    meta = dict(dataset_meta=dict(classes=model.dataset_meta['classes']))
    torch.save(dict(meta=meta, state_dict=model.state_dict()), checkpoint)
    return str(config), str(checkpoint)


def _mmdet_reference(config, checkpoint, frames):
    """mmdet's own API on each frame: ``(bboxes (N, 4), scores (N,), labels (N,))``."""
    from mmdet.apis import inference_detector, init_detector
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = init_detector(config, checkpoint, device='cpu')
        out = []
        for frame in frames:
            pred = inference_detector(model, frame).pred_instances.cpu().numpy()
            out.append((pred.bboxes, pred.scores, pred.labels))
    return out


def test_the_mmdet_person_detector_is_mmdet_filtered_to_persons(rtmdet):
    from mmengine.registry import DefaultScope
    config, checkpoint = rtmdet
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(2)]
    frames[1][20:80, 60:100] = 30  # a dark block: the boxes move
    scope_before = DefaultScope.get_current_instance()
    reference = _mmdet_reference(config, checkpoint, frames)
    person_scores = np.concatenate([s[l == 0] for _, s, l in reference])
    threshold = float(np.median(person_scores))  # half the person boxes pass
    detector = build_detector(config, checkpoint, 'cpu')
    assert isinstance(detector, MMDetPersonDetector)
    detector.score_threshold = threshold
    kept = clipped = 0
    right = []
    for i, (frame, (bboxes, scores, labels)) in enumerate(zip(frames, reference)):
        # the reference has boxes of other classes and persons under the threshold
        assert (labels != 0).any() and ((labels == 0) & (scores < threshold)).any()
        keep = (labels == 0) & (scores >= threshold)
        # mmdet's boxes reach into the pipeline's padding (the 160 x 96 frame is padded
        # to 160 x 160); the detector clips them to the frame
        clipped += (bboxes[keep, 3] > 96).sum()
        expected = np.concatenate([np.minimum(bboxes[keep], [160, 96, 160, 96]),
                                   scores[keep, None]], axis=1)
        boxes = detector(frame, i)
        assert boxes.dtype == np.float32 and boxes.shape == (keep.sum(), 5)
        np.testing.assert_array_equal(boxes, expected.astype(np.float32))
        # boxes in the frame's pixels, scaled back from the 128-pixel input
        assert (boxes[:, 2:4] > boxes[:, :2] + 20).all() and boxes[:, :4].min() >= 0
        kept += len(boxes)
        right.append(boxes[:, 2].max())
    assert kept >= 4 and clipped >= 1 and max(right) > 128
    # the process's default scope is left as it was (unspat-mm's models build in theirs)
    assert DefaultScope.get_current_instance() is scope_before


def test_the_inferencer_runs_on_an_mmdet_detector(rtmdet, embedded_checkpoint,
                                                  synthetic_video, standin_model_dir,
                                                  tmp_path):
    from unspat_mm.apis import UNSPATInferencer
    config, checkpoint = rtmdet
    frames = synthetic_video['frames'][:6]
    inferencer = UNSPATInferencer(EMBEDDED, embedded_checkpoint[0], det=config,
                                  det_checkpoint=checkpoint, body_model_dir=standin_model_dir,
                                  min_track_frames=2, smooth=0)
    detector = MMDetPersonDetector(config, checkpoint)
    expected = [detector(frame, i) for i, frame in enumerate(frames)]
    assert sum(len(b) for b in expected) > 0
    out = tmp_path / 'out'
    results = list(inferencer(frames, out_dir=str(out), show_progress=False))
    assert [r['frame_id'] for r in results] == list(range(6))
    meta = json.loads((out / 'results.json').read_text())['meta_info']
    assert meta['num_frames'] == 6 and meta['frame_size'] == [96, 96]
    tracks = sorted(p.name for p in out.glob('track_*.npz'))
    assert len(tracks) == len(meta['tracks']) >= 1  # measured: 2 tracks, 2 boxes a frame
    assert sum(len(r['predictions']) for r in results) >= 6
    # every predicted box is one the detector gave in that frame (ByteTracker links them
    # without moving them; smooth=0)
    for result in results:
        for person in result['predictions']:
            if person['detected']:
                dist = np.abs(expected[result['frame_id']][:, :4] - person['bbox']).max(1)
                assert dist.min() < 1e-3


def test_mmdet_boxes_are_clipped_to_the_frame_and_empty_ones_dropped(rtmdet):
    """Crafted detections: negative corners clip to 0, a box wholly in the padding below
    the frame is dropped, other classes and low scores are filtered."""
    from mmengine.structures import InstanceData
    detector = build_detector(*rtmdet, 'cpu')
    pred = InstanceData(
        bboxes=torch.tensor([[-5., -3., 40., 50.], [10., 100., 50., 150.], [150., 20., 170., 90.],
                             [5., 5., 30., 30.], [5., 5., 30., 30.]]),
        scores=torch.tensor([0.9, 0.9, 0.8, 0.9, 0.1]), labels=torch.tensor([0, 0, 0, 2, 0]))
    detector._infer = lambda model, frame: SimpleNamespace(pred_instances=pred)
    boxes = detector(np.zeros((96, 160, 3), np.uint8))
    np.testing.assert_array_equal(boxes, np.array([[0., 0., 40., 50., 0.9],
                                                   [150., 20., 160., 90., 0.8]], np.float32))
