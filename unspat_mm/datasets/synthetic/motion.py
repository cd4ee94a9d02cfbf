"""Procedural human motion for the synthetic benchmark: smooth, within joint limits.

Every SMPL joint (1..23) is a chain of rotations about its parent's axes (SMPL's rest frame:
x = the body's left, y = up, z = forward; T-pose). Each rotation angle is a *channel* with a
range; a sequence gives every channel a base value, a gait term (walking-like leg and arm
swings sharing one phase) and a few low-frequency sinusoids, and squashes the sum smoothly
into its range (``mid + half * tanh((x - mid) / half)``), so motion is smooth and within
limits. The arms are parametrised from a lowered arm (abduction, then flexion), their
singularity (pure twist) being at the horizontal arm.

Angles in radians, time in seconds. Poses are (L, 24, 3) axis-angle in SMPL's frame; the
global orientation (joint 0) is a slow yaw about the vertical axis plus small tilts.
"""
import numpy as np
from einops import pack, unpack
from scipy.spatial.transform import Rotation

from unspat_mm.structures.skeleton import NUM_SMPL_JOINTS

__all__ = ['JOINT_CHANNELS', 'axis_rotation', 'channel_limits', 'sample_motion',
           'channels_to_rotmats', 'rotmats_to_axis_angle']

PI = np.pi
# joint: tuple of (axis, lo, hi, neutral), applied first-to-last to the rest bone (the
# first channel acts first, i.e. is the rightmost factor of the product).
_SPINE = (('y', -.35, .35, 0.), ('z', -.25, .25, 0.), ('x', -.25, .45, .05))
_LEFT_ARM = (('x', -.9, .9, 0.), ('z', -PI / 2, -PI / 2, -PI / 2),  # rest arm pointing down
             ('z', 0., 2.5, .25), ('x', -1.7, .6, 0.))
_LEFT_LEG = (('y', -.45, .45, 0.), ('z', -.15, .7, .06), ('x', -1.7, .45, 0.))
JOINT_CHANNELS = {
    1: _LEFT_LEG,                                                         # left hip
    3: _SPINE, 6: _SPINE, 9: _SPINE,                                      # spine1..3
    4: (('x', 0., 2.3, .1), ),                                            # left knee
    7: (('z', -.15, .15, 0.), ('x', -.4, .5, 0.)),                        # left ankle
    10: (('x', -.2, .3, 0.), ),                                           # left foot
    12: (('y', -.6, .6, 0.), ('z', -.3, .3, 0.), ('x', -.4, .5, 0.)),     # neck
    13: (('y', -.25, .2, 0.), ('z', -.15, .3, 0.)),                       # left collar
    15: (('y', -.4, .4, 0.), ('z', -.2, .2, 0.), ('x', -.3, .4, 0.)),     # head
    16: _LEFT_ARM,                                                        # left shoulder
    18: (('x', -.4, .4, 0.), ('y', -2.4, 0., -.25)),                      # left elbow
    20: (('x', -.6, .6, 0.), ('z', -.5, .5, 0.), ('y', -.3, .3, 0.)),     # left wrist
    22: (('z', -.3, .3, 0.), ),                                           # left hand
}
# Right side: the mirror image (x -> -x flips the sign of y and z rotations).
for _left, _right in ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21),
                      (22, 23)):
    JOINT_CHANNELS[_right] = tuple(
        (ax, lo, hi, nu) if ax == 'x' else (ax, -hi, -lo, -nu)
        for ax, lo, hi, nu in JOINT_CHANNELS[_left])
JOINT_CHANNELS = dict(sorted(JOINT_CHANNELS.items()))
_CHANNELS = [(j, k, *c) for j, chans in JOINT_CHANNELS.items() for k, c in enumerate(chans)]
_GAIT = {  # (joint, channel index): (amplitude, phase offset, kind)
    (1, 2): (-.45, 0., 'sin'), (2, 2): (-.45, PI, 'sin'),          # hips swing in antiphase
    (4, 0): (.55, -.6, 'pos'), (5, 0): (.55, PI - .6, 'pos'),      # knees bend in swing
    (16, 3): (-.35, PI, 'sin'), (17, 3): (-.35, 0., 'sin'),        # arms swing against legs
    (18, 1): (-.25, 0., 'pos'), (19, 1): (.25, PI, 'pos'),
    (3, 0): (.08, 0., 'sin'),                                      # torso counter-rotation
}
_AXES = {'x': 0, 'y': 1, 'z': 2}


def axis_rotation(axis, angle):
    """(...,) angles (radians) about the coordinate ``axis`` ('x', 'y' or 'z') ->
    (..., 3, 3) rotation matrices."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i = _AXES[axis]
    j, k = (i + 1) % 3, (i + 2) % 3
    out[..., i, i] = 1.
    out[..., j, j], out[..., k, k] = c, c
    out[..., k, j], out[..., j, k] = s, -s
    return out


def channel_limits():
    """(C, 2) lower and upper limits of the channels, in :func:`sample_motion` order."""
    return np.array([(lo, hi) for _, _, _, lo, hi, _ in _CHANNELS])


def _squash(x, lo, hi):
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return np.where(half > 0, mid + half * np.tanh((x - mid) / np.maximum(half, 1e-9)), lo)


def sample_motion(rng, num_frames, fps=25., walk_prob=.5, liveliness=(.3, 1.), spread=(.15, .6),
                  yaw_speed=.6, yaw_range=(-PI, PI)):
    """Sample one sequence of channel values and the root orientation.

    Args:
        rng (np.random.Generator): the sequence's motion stream.
        num_frames (int): L.
        fps (float): frames per second. Defaults to 25.0.
        walk_prob (float): probability that the sequence walks (gait term on).
            Defaults to 0.5.
        liveliness (tuple): range of the sinusoid amplitude, as a fraction of each range.
            Defaults to (0.3, 1.0).
        spread (tuple): range of the base pose's spread around the neutral pose.
            Defaults to (0.15, 0.6).
        yaw_speed (float): maximum mean yaw rate (rad/s) about the vertical axis.
            Defaults to 0.6.
        yaw_range (tuple): range of the initial yaw; 0 faces the camera (see
            ``camera.SMPL_TO_CAMERA``). Defaults to (-PI, PI).

    Returns:
        tuple: ``channels`` (L, C) within :func:`channel_limits`, ``root`` (L, 3, 3) global
        orientation in SMPL's frame (y up).
    """
    t = np.arange(num_frames) / fps
    lim = channel_limits()
    lo, hi = lim[:, 0], lim[:, 1]
    neutral = np.array([c[-1] for c in _CHANNELS])
    half = (hi - lo) / 2
    base = neutral + rng.uniform(-1, 1, len(lo)) * half * rng.uniform(*spread)
    k = 3  # sinusoids per channel
    amp = half[:, None] * rng.uniform(*liveliness) * rng.uniform(0, .5, (len(lo), k)) / np.sqrt(k)
    freq = rng.uniform(.1, 1.1, (len(lo), k))
    phase = rng.uniform(0, 2 * PI, (len(lo), k))
    values = base[None] + np.einsum('ck,tck->tc', amp,
                                    np.sin(2 * PI * freq[None] * t[:, None, None] + phase[None]))
    if rng.uniform() < walk_prob:
        gait_phase = 2 * PI * rng.uniform(.7, 1.2) * t + rng.uniform(0, 2 * PI)
        strength = rng.uniform(.5, 1.2)
        index = {(j, c): n for n, (j, c, *_rest) in enumerate(_CHANNELS)}
        for key, (a, offset, kind) in _GAIT.items():
            wave = np.sin(gait_phase + offset)
            # 'pos': a smooth one-sided bump (knees and elbows only bend one way)
            values[:, index[key]] += strength * a * (((1 + wave) / 2)**2 if kind == 'pos' else wave)
    channels = _squash(values, lo, hi)
    yaw = (rng.uniform(*yaw_range) + rng.uniform(-yaw_speed, yaw_speed) * t +
           rng.uniform(0, .4) * np.sin(2 * PI * rng.uniform(.05, .3) * t + rng.uniform(0, 2 * PI)))
    pitch = rng.uniform(-.08, .12) + .05 * np.sin(2 * PI * rng.uniform(.1, .4) * t +
                                                  rng.uniform(0, 2 * PI))
    roll = rng.uniform(-.06, .06) + .03 * np.sin(2 * PI * rng.uniform(.1, .4) * t)
    root = axis_rotation('y', yaw) @ axis_rotation('x', pitch) @ axis_rotation('z', roll)
    return channels, root


def channels_to_rotmats(channels):
    """(L, C) channel values -> (L, 23, 3, 3) local rotations of SMPL joints 1..23."""
    num = channels.shape[0]
    rot = np.broadcast_to(np.eye(3), (num, NUM_SMPL_JOINTS - 1, 3, 3)).copy()
    for n, (j, _, axis, *_lim) in enumerate(_CHANNELS):
        # later channels act after earlier ones: left-multiply
        rot[:, j - 1] = axis_rotation(axis, channels[:, n]) @ rot[:, j - 1]
    return rot


def rotmats_to_axis_angle(rotmats):
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle (radians)."""
    flat, packed_shape = pack([rotmats], '* i j')
    rotvec = Rotation.from_matrix(flat).as_rotvec()
    return unpack(rotvec, packed_shape, '* c')[0]
