import numpy as np
import pytest

from unspat_mm.datasets.synthetic.motion import (JOINT_CHANNELS, axis_rotation, channel_limits,
                                                 channels_to_rotmats, rotmats_to_axis_angle,
                                                 sample_motion)

MIRROR = np.diag([-1., 1., 1.])


def _channel_index(joint, k):
    return [(j, n) for j, chans in JOINT_CHANNELS.items() for n in range(len(chans))].index(
        (joint, k))


def test_axis_rotation_right_handed():
    # a quarter turn about z takes x to y, about x takes y to z, about y takes z to x
    e = np.eye(3)
    np.testing.assert_allclose(axis_rotation('z', np.pi / 2) @ e[0], e[1], atol=1e-12)
    np.testing.assert_allclose(axis_rotation('x', np.pi / 2) @ e[1], e[2], atol=1e-12)
    np.testing.assert_allclose(axis_rotation('y', np.pi / 2) @ e[2], e[0], atol=1e-12)


@pytest.mark.parametrize('seed', range(6))
def test_motion_within_limits_and_smooth(seed):
    channels, root = sample_motion(np.random.default_rng(seed), 200, fps=25.)
    lim = channel_limits()
    assert channels.shape == (200, len(lim))
    assert (channels >= lim[:, 0] - 1e-9).all() and (channels <= lim[:, 1] + 1e-9).all()
    # smooth: accelerations stay small at 25 fps (radians per frame^2)
    assert np.abs(np.diff(channels, 2, axis=0)).max() < .05
    np.testing.assert_allclose(root @ root.transpose(0, 2, 1),
                               np.broadcast_to(np.eye(3), root.shape), atol=1e-12)
    # upright: the body's up axis stays within ~20 degrees of vertical
    assert (root[:, 1, 1] > np.cos(np.deg2rad(20))).all()


def test_motion_deterministic_and_varied():
    a = sample_motion(np.random.default_rng(3), 64)
    b = sample_motion(np.random.default_rng(3), 64)
    c = sample_motion(np.random.default_rng(4), 64)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.abs(a[0] - c[0]).max() > .1


def test_walking_swings_legs_in_antiphase_and_arms_against_legs():
    channels, _ = sample_motion(np.random.default_rng(0), 250, walk_prob=1., liveliness=(0., 0.))
    left_hip, right_hip = channels[:, _channel_index(1, 2)], channels[:, _channel_index(2, 2)]
    left_arm = channels[:, _channel_index(16, 3)]
    assert np.corrcoef(left_hip, right_hip)[0, 1] < -.9
    assert np.corrcoef(left_hip, left_arm)[0, 1] < -.9


def test_rest_channels_hang_the_arms_down_and_mirror():
    lim = channel_limits()
    channels = np.clip(np.zeros((1, len(lim))), lim[:, 0], lim[:, 1])
    rot = channels_to_rotmats(channels)[0]  # (23, 3, 3), joint j at j - 1
    np.testing.assert_allclose(rot[15] @ np.array([1., 0, 0]), [0, -1, 0], atol=1e-12)  # left
    np.testing.assert_allclose(rot[16] @ np.array([-1., 0, 0]), [0, -1, 0], atol=1e-12)  # right
    # every right joint is the mirror image of its left twin for mirrored channels
    channels = sample_motion(np.random.default_rng(1), 5)[0]
    rot = channels_to_rotmats(channels)
    for left, right in ((1, 2), (4, 5), (16, 17), (18, 19), (20, 21)):
        mirrored = channels.copy()
        for k in range(len(JOINT_CHANNELS[left])):
            mirrored[:, _channel_index(right, k)] = channels[:, _channel_index(left, k)] * (
                1 if JOINT_CHANNELS[left][k][0] == 'x' else -1)
        rot_m = channels_to_rotmats(mirrored)
        np.testing.assert_allclose(rot_m[:, right - 1], MIRROR @ rot[:, left - 1] @ MIRROR,
                                   atol=1e-12)


def test_flexion_directions():
    """Hip flexion swings the thigh forward (+z), knee flexion the shin backward, elbow
    flexion the forearm forward: the anatomy the channel ranges assume."""
    lim = channel_limits()
    channels = np.clip(np.zeros((1, len(lim))), lim[:, 0], lim[:, 1])
    channels[0, _channel_index(1, 2)] = -1.  # left hip flexion
    channels[0, _channel_index(4, 0)] = 1.  # left knee
    channels[0, _channel_index(18, 1)] = -1.  # left elbow
    rot = channels_to_rotmats(channels)[0]
    assert (rot[0] @ [0, -1, 0])[2] > .8  # thigh forward
    assert (rot[3] @ [0, -1, 0])[2] < -.8  # shin backward relative to the thigh
    forearm = rot[15] @ rot[17] @ np.array([1., 0, 0])  # shoulder then elbow
    assert forearm[2] > .8


def test_rotmats_to_axis_angle_round_trip():
    rot = channels_to_rotmats(sample_motion(np.random.default_rng(2), 7)[0])
    aa = rotmats_to_axis_angle(rot)
    assert aa.shape == (7, 23, 3)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    k = np.zeros(aa.shape + (3, ))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    rebuilt = np.eye(3) + np.sin(angle)[..., None] * k + (1 - np.cos(angle))[..., None] * k @ k
    np.testing.assert_allclose(rebuilt, rot, atol=1e-10)
