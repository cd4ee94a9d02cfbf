"""The DeepMimic clip loader on a fixture written in the pybullet clip format."""
import json
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from unspat_mm.datasets.synthetic.deepmimic import (FRAME_SIZE, deepmimic_to_smpl,
                                                    find_deepmimic_clips, load_deepmimic_clip)
from unspat_mm.datasets.synthetic.motion import axis_rotation

IDENTITY = [1., 0., 0., 0.]  # w, x, y, z


def _frame(duration=1 / 30, pos=(0., .9, 0.), root=IDENTITY, right_knee=0., left_knee=0.,
           right_elbow=0., left_elbow=0., chest=IDENTITY):
    # duration, root pos, root quat, chest, neck, r hip, r knee, r ankle, r shoulder,
    # r elbow, l hip, l knee, l ankle, l shoulder, l elbow
    return ([duration, *pos, *root, *chest, *IDENTITY, *IDENTITY, right_knee, *IDENTITY,
             *IDENTITY, right_elbow, *IDENTITY, left_knee, *IDENTITY, *IDENTITY, left_elbow])


def _quat_y(angle):
    return [np.cos(angle / 2), 0., np.sin(angle / 2), 0.]


@pytest.fixture
def clip_file(tmp_path):
    frames = [_frame(),
              _frame(pos=(.3, .9, 0.), root=_quat_y(np.pi / 2), right_knee=-1., left_knee=-.5,
                     right_elbow=1.2, left_elbow=.6, chest=_quat_y(.6)),
              _frame(pos=(.6, .9, 0.))]
    assert all(len(f) == FRAME_SIZE for f in frames)
    path = tmp_path / 'humanoid3d_fixture.txt'
    path.write_text(json.dumps({'Loop': 'wrap', 'Frames': frames}))
    return str(path)


def test_load_fields(clip_file):
    clip = load_deepmimic_clip(clip_file)
    np.testing.assert_allclose(clip['durations'], [1 / 30] * 3)
    np.testing.assert_allclose(clip['root_pos'][1], [.3, .9, 0.])
    np.testing.assert_allclose(clip['root_quat'][1], _quat_y(np.pi / 2))
    assert clip['right_knee'][1] == -1. and clip['left_knee'][1] == -.5
    assert clip['right_elbow'][1] == 1.2 and clip['left_elbow'][1] == .6
    np.testing.assert_allclose(clip['chest'][1], _quat_y(.6))
    np.testing.assert_allclose(clip['left_shoulder'][1], IDENTITY)


def test_convert_keyframe_exactly(clip_file):
    # at 30 fps the frames are the keyframes themselves
    root, local, pos = deepmimic_to_smpl(load_deepmimic_clip(clip_file), fps=30.)
    assert root.shape == (3, 3, 3) and local.shape == (3, 23, 3, 3) and pos.shape == (3, 3)
    # DeepMimic x forward -> SMPL z forward
    np.testing.assert_allclose(pos[1], [0., .9, .3], atol=1e-12)
    # a DeepMimic yaw about y is the same yaw in SMPL; the body then faces +x
    np.testing.assert_allclose(root[1], axis_rotation('y', np.pi / 2), atol=1e-12)
    np.testing.assert_allclose(root[1] @ [0, 0, 1.], [1., 0, 0], atol=1e-12)
    # knees: DeepMimic's negative angle about z (its right) is SMPL's positive x flexion
    np.testing.assert_allclose(local[1, 3], axis_rotation('x', .5), atol=1e-12)  # left knee
    np.testing.assert_allclose(local[1, 4], axis_rotation('x', 1.), atol=1e-12)  # right knee
    # elbows bend forward: left about -y, right about +y in the lowered arm's frame
    np.testing.assert_allclose(local[1, 17], axis_rotation('y', -.6), atol=1e-12)
    np.testing.assert_allclose(local[1, 18], axis_rotation('y', 1.2), atol=1e-12)
    # rest: the arms hang down
    np.testing.assert_allclose(local[0, 15] @ [1., 0, 0], [0, -1., 0], atol=1e-12)
    np.testing.assert_allclose(local[0, 16] @ [-1., 0, 0], [0, -1., 0], atol=1e-12)
    # the chest rotation is spread over the three spine joints
    spine = local[1, 2] @ local[1, 5] @ local[1, 8]
    np.testing.assert_allclose(spine, axis_rotation('y', .6), atol=1e-12)


def test_resampling_slerps(clip_file):
    root, local, pos = deepmimic_to_smpl(load_deepmimic_clip(clip_file), fps=60.)
    assert len(root) == 5  # 0 .. 2/30 s every 1/60 s
    np.testing.assert_allclose(root[1], axis_rotation('y', np.pi / 4), atol=1e-9)
    np.testing.assert_allclose(local[1, 4], axis_rotation('x', .5), atol=1e-9)
    np.testing.assert_allclose(pos[3], [0., .9, .45], atol=1e-12)


def test_posed_stand_in_body(clip_file, body_model):
    """Through the body model: at rest the hands hang below the shoulders; with the knee
    bent the ankle is behind the knee; with the elbow bent the wrist is in front."""
    root, local, _ = deepmimic_to_smpl(load_deepmimic_clip(clip_file), fps=30.)
    pose = np.concatenate([np.broadcast_to(np.eye(3), (3, 1, 3, 3)), local], axis=1)
    out = body_model(torch.as_tensor(pose, dtype=torch.float32), torch.zeros(3, 10))
    j = out['joints24'].numpy()
    for shoulder, wrist in ((16, 20), (17, 21)):
        drop = j[0, shoulder] - j[0, wrist]
        assert drop[1] > .4 and abs(drop[0]) < .1 and abs(drop[2]) < .1
    assert j[1, 8, 2] < j[1, 5, 2] - .2  # right ankle behind the right knee (knee -1 rad)
    assert j[1, 21, 2] > j[1, 19, 2] + .15  # right wrist in front of the elbow (1.2 rad)


def test_errors(tmp_path, monkeypatch):
    bad = tmp_path / 'humanoid3d_bad.txt'
    bad.write_text(json.dumps({'Frames': [[0.] * 43, [0.] * 43]}))
    with pytest.raises(ValueError, match='44 numbers'):
        load_deepmimic_clip(str(bad))
    monkeypatch.setitem(sys.modules, 'pybullet_data', None)  # as if pybullet were missing
    with pytest.raises(ImportError, match='pip install pybullet'):
        find_deepmimic_clips()
    with pytest.raises(FileNotFoundError, match='humanoid3d'):
        find_deepmimic_clips(str(tmp_path / 'empty'))
    assert find_deepmimic_clips(str(tmp_path)) == [str(bad)]


def test_quaternion_order_is_wxyz(tmp_path):
    """A quarter turn about x written as (w, x, y, z) must come out about x (not about w)."""
    quat = Rotation.from_rotvec([np.pi / 2, 0, 0]).as_quat()[[3, 0, 1, 2]]
    path = tmp_path / 'humanoid3d_q.txt'
    path.write_text(json.dumps({'Frames': [_frame(root=list(quat)), _frame(root=list(quat))]}))
    root, _, _ = deepmimic_to_smpl(load_deepmimic_clip(str(path)), fps=30.)
    # DeepMimic x (forward) is SMPL z: a turn about DeepMimic x is a turn about SMPL z
    np.testing.assert_allclose(root[0], axis_rotation('z', np.pi / 2), atol=1e-12)


def test_generator_plays_clips(tmp_path, standin_model_dir):
    """motion.source='deepmimic': the generated sequences are the clip's poses (the knee
    angles of every frame are the clip's, looped back and forth)."""
    from unspat_mm.datasets.synthetic import ensure_synthetic_dataset, load_split
    knees = np.linspace(-1.2, 0., 12)
    frames = [_frame(duration=1 / 25, left_knee=k) for k in knees]
    (tmp_path / 'clips').mkdir()
    (tmp_path / 'clips' / 'humanoid3d_knee.txt').write_text(json.dumps({'Frames': frames}))
    settings = dict(num_sequences=dict(train=1, val=0, test=1), num_frames=20, image_size=(48, 48),
                    motion=dict(source='deepmimic', deepmimic_dir=str(tmp_path / 'clips')))
    folder = ensure_synthetic_dataset(settings, str(tmp_path / 'cache'), standin_model_dir)
    ann, meta = load_split(folder, 'train')
    assert meta['clips'] == [['humanoid3d_knee.txt', (tmp_path / 'clips' /
                                                      'humanoid3d_knee.txt').stat().st_size]]
    left_knee = ann['theta'][:, 12:15]  # SMPL joint 4
    np.testing.assert_allclose(left_knee[:, 1:], 0, atol=1e-6)
    distance = np.abs(left_knee[:, :1] + knees[None]).min(1)  # the 12 keyframes at 25 fps
    assert distance.max() < 1e-5
    assert len(np.unique(left_knee[:, 0].round(4))) >= 8  # it moves
