"""The inferencer on a video whose ground truth is known (the synthetic test split): with
the dataset's boxes it reproduces the model's predictions of tools/test.py's windows, and
it writes the documented files."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from unspat_mm.apis import UNSPATInferencer
from unspat_mm.datasets import SyntheticVideoDataset

from apis_helpers import EMBEDDED


def _test_step_predictions(model, synthetic_video):
    """tools/test.py's path: the config's test windows and pipeline, model.test_step."""
    pipeline = [dict(type='LoadVideoFrames'),
                dict(type='VideoBBoxCrop', input_size=(64, 64), bbox_key='bbox'),
                dict(type='PackVideoMeshInputs')]
    dataset = SyntheticVideoDataset(num_frames=4, frame_interval=8, pipeline=pipeline,
                                    **synthetic_video['dataset_kw'])
    samples = []
    for start in range(0, len(dataset), 8):
        batch = pseudo_collate([dataset[i] for i in range(start, min(start + 8, len(dataset)))])
        samples += model.test_step(batch)
    return samples


@pytest.fixture(scope='module')
def inferred(embedded_checkpoint, synthetic_video, standin_model_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('run') / 'out'
    inferencer = UNSPATInferencer(EMBEDDED, embedded_checkpoint[0],
                                  det=synthetic_video['boxes_json'],
                                  body_model_dir=standin_model_dir, save_vertices=True,
                                  save_uncertainty_maps=True)
    results = list(inferencer(synthetic_video['frames'], out_dir=str(out_dir), render=True,
                              show_progress=False))
    return inferencer, results, out_dir


def test_inferencer_reproduces_the_test_tool_predictions(inferred, embedded_checkpoint,
                                                         synthetic_video):
    _, results, _ = inferred
    samples = _test_step_predictions(embedded_checkpoint[1], synthetic_video)
    assert len(results) == len(samples) == len(synthetic_video['frames'])
    errors = []
    for result, sample in zip(results, samples):
        (person, ) = result['predictions']
        assert person['track_id'] == sample.sequence_id
        diffs = {key: np.abs(person[key] - sample.get(f'pred_{key}').numpy()).max()
                 for key in ('theta', 'betas', 'camera', 'keypoints3d', 'joints24', 'sigma',
                             'vertices')}
        diffs['uncertainty'] = np.abs(person['uncertainty_map']
                                      - sample.pred_uncertainty.numpy()).max()
        errors.append(diffs)
    worst = {k: max(e[k] for e in errors) for k in errors[0]}
    print('largest differences:', worst)
    # the same crops, windows and weights: the network's outputs equal to float rounding;
    # the IK amplifies that rounding (an untrained model's keypoints are bunched up, so its
    # bones are short), yet the meshes stay within 0.1 mm (the issue asks for 1 mm)
    for key in ('betas', 'camera', 'keypoints3d', 'sigma', 'uncertainty'):
        assert worst[key] < 1e-6, key
    assert worst['theta'] < 1e-3
    assert worst['vertices'] < 1e-4 and worst['joints24'] < 1e-4


def test_result_files_hold_the_documented_fields(inferred, synthetic_video):
    inferencer, results, out_dir = inferred
    names = sorted(os.listdir(out_dir))
    ids = sorted(set(synthetic_video['sequence_ids'].tolist()))
    assert names == sorted([f'track_{i:03d}.npz' for i in ids] + ['results.json', 'vis.mp4'])
    assert not [n for n in os.listdir(out_dir.parent) if '.tmp-' in n]
    for tid in ids:
        rows = np.flatnonzero(synthetic_video['sequence_ids'] == tid)
        with np.load(out_dir / f'track_{tid:03d}.npz', allow_pickle=False) as npz:
            n = len(rows)
            shapes = dict(frame_ids=(n, ), bboxes=(n, 4), theta=(n, 72), betas=(n, 10),
                          camera=(n, 3), keypoints3d=(n, 29, 3), joints24=(n, 24, 3),
                          keypoints2d=(n, 29, 2), sigma=(n, 29), uncertainty=(n, ),
                          vertices=(n, 6890, 3), uncertainty_maps=(n, 4, 4, 4))
            for key, shape in shapes.items():
                assert npz[key].shape == shape, key
                assert np.isfinite(npz[key]).all(), key
            np.testing.assert_array_equal(npz['frame_ids'], rows)
            assert int(npz['track_id']) == tid and bool(npz['is_standin'])
            assert ((npz['uncertainty'] >= 0) & (npz['uncertainty'] <= 1)).all()
            # the per-frame score is the target frame's mean map
            np.testing.assert_allclose(npz['uncertainty'],
                                       npz['uncertainty_maps'][:, 2].mean((1, 2)), atol=1e-6)
            # metres: the pelvis is the origin of the root-relative keypoints
            assert np.abs(npz['keypoints3d'][:, 0]).max() == 0
    data = json.loads((out_dir / 'results.json').read_text())
    meta = data['meta_info']
    assert meta['body_model_is_standin'] and 'STAND-IN' in meta['warning']
    assert meta['config'] == 'unspat_synthetic' and 'unspat_synthetic' in meta['trained_with']
    assert meta['window'] == dict(num_frames=4, frame_interval=8, causal=False)
    frames = data['instance_info']
    assert [f['frame_id'] for f in frames] == list(range(len(synthetic_video['frames'])))
    first = frames[0]['instances'][0]
    assert set(first) >= {'track_id', 'bbox', 'bbox_score', 'keypoints', 'keypoint_scores',
                          'keypoints3d', 'theta', 'betas', 'camera', 'uncertainty'}
    np.testing.assert_allclose(first['theta'], results[0]['predictions'][0]['theta'], atol=1e-5)
    cap = cv2.VideoCapture(str(out_dir / 'vis.mp4'))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == len(synthetic_video['frames'])


def test_keypoints_in_the_image_follow_the_crop(inferred, synthetic_video):
    """The 2D keypoints in image pixels map back into the crop where the head put them."""
    _, results, _ = inferred
    person = results[5]['predictions'][0]
    affine = person['crop_affine']
    crop_px = person['keypoints'] @ affine[:, :2].T + affine[:, 2]
    assert abs(person['crop_box'][0] - synthetic_video_box(synthetic_video, 5)[0]) < 1e-9
    np.testing.assert_allclose(crop_px / 64 - 0.5, _head_keypoints2d(person), atol=1e-4)


def synthetic_video_box(synthetic_video, frame):
    boxes = json.loads(open(synthetic_video['boxes_json']).read())
    return boxes['frames'][frame]['bboxes'][0]


def _head_keypoints2d(person):
    from unspat_mm.models.heads import semi_perspective_projection
    kp = torch.as_tensor(person['keypoints3d'])[None]
    cam = torch.as_tensor(person['camera'])[None]
    return semi_perspective_projection(kp, cam, 1000. / 256.)[0].numpy()
