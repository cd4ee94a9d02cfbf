"""Real motion capture for the synthetic benchmark: the DeepMimic clips of the pybullet wheel.

``pip install pybullet`` ships 15 clips as ``pybullet_data/data/motions/humanoid3d_*.txt``
(zlib licence). Each is JSON with ``Frames``: a list of 44 numbers per keyframe:

==========  =====================================================================
index       meaning (DeepMimic ``humanoid3d`` character; frame: x forward, y up,
            z to the character's right; quaternions ``w, x, y, z``, local to the
            parent joint; rest pose = identity = standing, arms hanging down)
==========  =====================================================================
0           duration of this keyframe (seconds)
1-3         root (pelvis) position, metres
4-7         root orientation
8-11        chest          12-15  neck
16-19       right hip      20     right knee (angle about z, radians)
21-24       right ankle    25-28  right shoulder   29  right elbow (angle about z)
30-33       left hip       34     left knee        35-38 left ankle
39-42       left shoulder  43     left elbow
==========  =====================================================================

The order is the one of pybullet's ``HumanoidPoseInterpolator`` / DeepMimic's humanoid3d
character (chest, neck, right hip, knee, ankle, shoulder, elbow, then the left side).

Mapping to SMPL (y up, faces +z, x = the body's left, T-pose): coordinates map with
``C`` (DeepMimic x -> SMPL z, z -> -x); a local rotation ``R`` becomes ``C R C^T``. The
chest rotation is spread equally over spine1..3, the neck's over neck and head; collars,
feet, wrists and hands stay at rest. The arm chain is conjugated by the rotation taking
SMPL's horizontal rest arm to DeepMimic's hanging one, so that the arm's global
direction and twist are preserved.
"""
import glob
import json
import os.path as osp

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .motion import axis_rotation

__all__ = ['find_deepmimic_clips', 'load_deepmimic_clip', 'deepmimic_to_smpl', 'FRAME_SIZE']

FRAME_SIZE = 44
_QUATS = {'chest': 8, 'neck': 12, 'right_hip': 16, 'right_ankle': 21, 'right_shoulder': 25,
          'left_hip': 30, 'left_ankle': 35, 'left_shoulder': 39}
_ANGLES = {'right_knee': 20, 'right_elbow': 29, 'left_knee': 34, 'left_elbow': 43}
DEEPMIMIC_TO_SMPL = np.array([[0., 0., -1.], [0., 1., 0.], [1., 0., 0.]])
# rest arm of SMPL (horizontal) -> rest arm of DeepMimic (down), in SMPL's frame
_ARM_FIX = {'left': axis_rotation('z', -np.pi / 2), 'right': axis_rotation('z', np.pi / 2)}


def find_deepmimic_clips(motion_dir=None):
    """Paths of the ``humanoid3d_*.txt`` clips in ``motion_dir``, by default those shipped
    with pybullet (which is then imported; raises ImportError with the fix if missing)."""
    if motion_dir is None:
        try:
            import pybullet_data
        except ImportError as err:
            raise ImportError(
                'DeepMimic motion needs the clips shipped with pybullet: `pip install '
                'pybullet` (or set motion.deepmimic_dir to a folder of humanoid3d_*.txt '
                'files, or use motion.source="procedural").') from err
        root = pybullet_data.getDataPath()
        dirs = [osp.join(root, 'data', 'motions'), osp.join(root, 'motions')]
    else:
        dirs = [motion_dir]
    clips = sorted(p for d in dirs for p in glob.glob(osp.join(d, 'humanoid3d_*.txt')))
    if not clips:
        raise FileNotFoundError(f'No humanoid3d_*.txt DeepMimic clips in {dirs}')
    return clips


def load_deepmimic_clip(path):
    """Read a clip: dict with ``durations`` (N,), ``root_pos`` (N, 3), ``root_quat`` (N, 4)
    and per joint a quaternion array (N, 4) (``w, x, y, z``) or an angle array (N,)."""
    with open(path) as f:
        data = json.load(f)
    frames = np.asarray(data.get('Frames') if isinstance(data, dict) else None, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != FRAME_SIZE or len(frames) < 2:
        raise ValueError(f'{path}: expected JSON with "Frames", a list of >= 2 keyframes of '
                         f'{FRAME_SIZE} numbers (DeepMimic humanoid3d), got shape '
                         f'{frames.shape}')
    clip = dict(durations=frames[:, 0], root_pos=frames[:, 1:4], root_quat=frames[:, 4:8])
    clip.update({name: frames[:, i:i + 4] for name, i in _QUATS.items()})
    clip.update({name: frames[:, i] for name, i in _ANGLES.items()})
    return clip


def _rotations(quat_wxyz):
    return Rotation.from_quat(quat_wxyz[..., [1, 2, 3, 0]])  # scipy: x, y, z, w


def _resample(clip, fps):
    """Keyframe times -> frame times at ``fps``: slerp for rotations, linear otherwise."""
    times = np.concatenate([[0.], np.cumsum(clip['durations'][:-1])])
    count = int(np.floor(times[-1] * fps + 1e-6)) + 1
    new_t = np.minimum(np.arange(count) / fps, times[-1])
    out = {}
    for name, value in clip.items():
        if name == 'durations':
            continue
        if value.ndim == 2 and value.shape[1] == 4:
            out[name] = Slerp(times, _rotations(value))(new_t).as_matrix()
        elif value.ndim == 2:
            out[name] = np.stack([np.interp(new_t, times, v) for v in value.T], -1)
        else:
            out[name] = np.interp(new_t, times, value)
    return out


def _power(rotmats, fraction):
    """(L, 3, 3) rotations -> the same rotations scaled to ``fraction`` of their angle."""
    return Rotation.from_rotvec(Rotation.from_matrix(rotmats).as_rotvec() * fraction).as_matrix()


def deepmimic_to_smpl(clip, fps=25.):
    """Convert a loaded clip to SMPL.

    Args:
        clip (dict): from :func:`load_deepmimic_clip`.
        fps (float): output frame rate. Defaults to 25.0.

    Returns:
        tuple: ``root`` (L, 3, 3) global orientation and ``local`` (L, 23, 3, 3) rotations
        of SMPL joints 1..23, in SMPL's frame (y up), and ``root_pos`` (L, 3) metres.
    """
    c = DEEPMIMIC_TO_SMPL
    frames = _resample(clip, fps)
    num = len(frames['root_pos'])

    def conj(rot):
        return c @ rot @ c.T

    local = np.broadcast_to(np.eye(3), (num, 23, 3, 3)).copy()
    spine = _power(conj(frames['chest']), 1 / 3)
    neck = _power(conj(frames['neck']), 1 / 2)
    for j in (3, 6, 9):
        local[:, j - 1] = spine
    for j in (12, 15):
        local[:, j - 1] = neck
    for side, hip, knee, ankle, shoulder, elbow in (('left', 1, 4, 7, 16, 18),
                                                    ('right', 2, 5, 8, 17, 19)):
        local[:, hip - 1] = conj(frames[f'{side}_hip'])
        local[:, knee - 1] = conj(axis_rotation('z', frames[f'{side}_knee']))
        local[:, ankle - 1] = conj(frames[f'{side}_ankle'])
        fix = _ARM_FIX[side]
        local[:, shoulder - 1] = conj(frames[f'{side}_shoulder']) @ fix
        local[:, elbow - 1] = fix.T @ conj(axis_rotation('z', frames[f'{side}_elbow'])) @ fix
    root = conj(frames['root_quat'])
    root_pos = frames['root_pos'] @ c.T
    return root, local, root_pos
