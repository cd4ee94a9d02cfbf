"""One generated sequence, checked against independent recomputations."""
import numpy as np
import pytest
import torch

from unspat_mm.datasets.synthetic import SequenceRenderer, merge_settings
from unspat_mm.datasets.synthetic.camera import SMPL_TO_CAMERA, project
from unspat_mm.datasets.synthetic.motion import axis_rotation
from unspat_mm.datasets.synthetic.render import PART_NAMES, splat_body
from unspat_mm.models.utils.twist_swing_ik import twist_angles_from_pose

SETTINGS = merge_settings(dict(num_frames=16, image_size=(96, 112), occlusion=dict(seq_prob=1.)))


@pytest.fixture(scope='module')
def renderer(body_model):
    return SequenceRenderer(body_model, SETTINGS)


@pytest.fixture(scope='module')
def seq(renderer):
    return renderer(7)


def test_same_seed_same_arrays_other_seed_differs(body_model, renderer, seq):
    again = SequenceRenderer(body_model, SETTINGS)(7)
    assert seq.keys() == again.keys()
    for key in seq:
        np.testing.assert_array_equal(seq[key], again[key], err_msg=key)
    other = SequenceRenderer(body_model, merge_settings(dict(seed=1), SETTINGS))(7)
    assert np.abs(other['theta'] - seq['theta']).max() > .1
    assert (other['images'] != seq['images']).mean() > .5
    assert np.abs(renderer(8)['theta'] - seq['theta']).max() > .1  # other sequence


def test_shapes(seq):
    num, (h, w) = SETTINGS['num_frames'], SETTINGS['image_size']
    expected = dict(images=(num, h, w, 3), theta=(num, 72), betas=(num, 10), transl=(num, 3),
                    joints29=(num, 29, 3), joints24=(num, 24, 3), joints17=(num, 17, 3),
                    joints14=(num, 14, 3), keypoints2d=(num, 29, 2), bbox=(num, 4),
                    bbox_gt=(num, 4), twist=(num, 23), occluder_mask=(num, h, w),
                    person_mask=(num, h, w))
    for key, shape in expected.items():
        assert seq[key].shape == shape, key
    np.testing.assert_array_equal(seq['frame_index'], np.arange(num))


def test_keypoints2d_are_the_projection_of_the_3d_joints(seq):
    joints, f, pp = seq['joints29'].astype(np.float64), seq['focal'], seq['principal']
    expected = f[:, None, None] * joints[..., :2] / joints[..., 2:] + pp[:, None]
    np.testing.assert_allclose(seq['keypoints2d'], expected, atol=1e-3)
    h, w = SETTINGS['image_size']
    np.testing.assert_allclose(pp, np.broadcast_to([w / 2, h / 2], pp.shape))


def test_theta_is_in_the_camera_frame(seq, body_model):
    """The body model driven by the stored camera-frame theta, plus transl, gives the stored
    camera-frame joints; the body is upright in camera axes (head above pelvis = smaller y)."""
    with torch.no_grad():
        out = body_model(torch.from_numpy(seq['theta']), torch.from_numpy(seq['betas']))
    for key in ('joints29', 'joints24', 'joints17', 'joints14'):
        np.testing.assert_allclose(out[key].numpy() + seq['transl'][:, None], seq[key],
                                   atol=2e-5, err_msg=key)
    assert (seq['joints29'][:, 15, 1] < seq['joints29'][:, 0, 1] - .3).all()
    assert (seq['joints29'][:, :, 2] > 2.).all()  # in front of the camera
    rest = body_model.rest_joints29(torch.from_numpy(seq['betas'][:1]))
    twist = twist_angles_from_pose(torch.from_numpy(seq['theta']), rest)
    np.testing.assert_allclose(seq['twist'], twist.numpy(), atol=1e-5)


def test_rendered_body_lies_under_its_keypoints(seq):
    px = np.floor(seq['keypoints2d']).astype(int)
    h, w = SETTINGS['image_size']
    inside = (px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0) & (px[..., 1] < h)
    t, j = np.nonzero(inside)
    on_body = seq['person_mask'][t, px[t, j, 1], px[t, j, 0]]
    assert on_body.mean() > .9
    assert seq['person_mask'].sum((1, 2)).min() > 300  # a person in every frame
    # the tight box holds every keypoint; the jittered one is near it
    lo, hi = seq['bbox_gt'][:, None, :2] - seq['bbox_gt'][:, None, 2:] / 2, \
        seq['bbox_gt'][:, None, :2] + seq['bbox_gt'][:, None, 2:] / 2
    assert ((seq['keypoints2d'] >= lo) & (seq['keypoints2d'] <= hi)).all()
    side = seq['bbox_gt'][:, 2]
    shift = np.linalg.norm(seq['bbox'][:, :2] - seq['bbox_gt'][:, :2], axis=-1) / side
    ratio = seq['bbox'][:, 2] / side
    assert 0 < shift.max() < .4 and ((ratio > .7) & (ratio < 1.4)).all() and ratio.std() > .01


def test_occluder_masks_cover_every_changed_pixel(renderer, seq):
    clean = renderer(7, occlusion=False)
    changed = (seq['images'] != clean['images']).any(-1)
    mask = seq['occluder_mask']
    assert mask.any() and changed.any()
    assert not (changed & ~mask).any()  # nothing changed outside the masks
    assert changed[mask].mean() > .5  # and the occluders are visible
    for key in ('theta', 'joints29', 'keypoints2d', 'bbox', 'person_mask'):
        np.testing.assert_array_equal(seq[key], clean[key])  # occlusion changes only pixels
    ratio = (mask & seq['person_mask']).sum((1, 2)) / seq['person_mask'].sum((1, 2))
    np.testing.assert_allclose(seq['occlusion_ratio'], ratio, atol=1e-6)
    np.testing.assert_array_equal(seq['occluded'],
                                  ratio >= SETTINGS['occlusion']['min_ratio'])


@pytest.mark.parametrize('yaw_deg, shown, hidden', [(90, 'torso_right', 'torso_left'),
                                                      (-90, 'torso_left', 'torso_right')])
def test_a_turned_body_shows_the_flank_that_turns_towards_the_camera(renderer, body_model,
                                                                     yaw_deg, shown, hidden):
    """A body in profile shows one flank's colour and hides the other's: that is what tells
    a half-left from a half-right turn at 64x64."""
    template = body_model.smpl.v_template.numpy().astype(np.float64)  # SMPL frame, faces +z
    turned = template @ axis_rotation('y', np.deg2rad(yaw_deg)).T
    cam = turned @ SMPL_TO_CAMERA.T + [0., 0., 4.]
    focal, size = 200., 160
    points2d = project(cam, focal, np.array([size / 2, size / 2]))
    image = np.zeros((size, size, 3), np.uint8)
    ids = np.stack([renderer.parts, renderer.parts, renderer.parts], -1).astype(np.float64)
    mask = splat_body(image, points2d, cam[:, 2], ids, footprint=3)
    visible = image[mask][:, 0]
    count = {name: int((visible == PART_NAMES.index(name)).sum()) for name in (shown, hidden)}
    torso = np.isin(visible, [PART_NAMES.index(n) for n in
                              ('torso_front', 'torso_back', 'torso_left', 'torso_right')]).sum()
    assert count[shown] > .3 * torso and count[hidden] < .02 * torso, count


def test_flanks_are_the_torso_vertices_facing_sideways(renderer, body_model):
    template = body_model.smpl.v_template.numpy()[None].astype(np.float64)
    normals = renderer.normals(template)[0]
    for name, sign in (('torso_left', 1), ('torso_right', -1)):  # SMPL's x: the body's left
        flank = renderer.parts == PART_NAMES.index(name)
        assert flank.sum() > 50
        assert (sign * normals[flank, 0] > np.abs(normals[flank, 2])).all()
    front = renderer.parts == PART_NAMES.index('torso_front')
    assert (normals[front, 2] >= np.abs(normals[front, 0])).all()
