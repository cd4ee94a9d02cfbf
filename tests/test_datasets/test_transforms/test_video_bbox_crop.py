"""VideoBBoxCrop: the keypoints move exactly as the pixels do."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from unspat_mm.datasets.transforms import (VideoBBoxCrop, apply_affine, bbox_crop_affine,
                                           to_cv2_affine)


def _blob_image(points, size=(120, 100), sigma=1.2):
    """(H, W, 3) uint8 image with a Gaussian blob at each continuous-coordinate point
    (pixel (i, j) has its centre at (i + 0.5, j + 0.5))."""
    w, h = size
    yy, xx = np.mgrid[:h, :w] + .5
    img = np.zeros((h, w))
    for x, y in points:
        img = np.maximum(img, np.exp(-((xx - x)**2 + (yy - y)**2) / (2 * sigma**2)))
    return np.repeat((img * 255).round().astype(np.uint8)[..., None], 3, -1)


def _centroid(img, near, radius=5):
    """Intensity centroid (continuous coordinates) of the blob near ``near``."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[:h, :w] + .5
    weight = img[..., 0].astype(np.float64) * (np.hypot(xx - near[0], yy - near[1]) < radius)
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()


def test_affine_maps_box_onto_crop():
    affine = bbox_crop_affine(np.array([50., 40., 20., 10.]), (64, 32))
    # aspect 2:1 already: the corners map onto the crop's corners
    np.testing.assert_allclose(apply_affine(np.array([[40., 35.], [60., 45.]]), affine),
                               [[0., 0.], [64., 32.]], atol=1e-12)
    # a tall box is widened to the crop's aspect, centred
    affine = bbox_crop_affine(np.array([50., 40., 10., 20.]), (32, 32))
    np.testing.assert_allclose(apply_affine(np.array([[40., 30.], [50., 40.]]), affine),
                               [[0., 0.], [16., 16.]], atol=1e-12)
    cv2_m = to_cv2_affine(affine)  # integer pixel centres: index = continuous - 0.5
    np.testing.assert_allclose(apply_affine(np.array([[39.5, 29.5]]), cv2_m), [[-.5, -.5]])


@pytest.mark.parametrize('rot_deg,scale,shift', [(0., 1., (0., 0.)), (25., 1.3, (.1, -.05)),
                                                 (-40., .8, (0., .1))])
def test_dots_land_on_their_keypoints(rot_deg, scale, shift):
    """Render a dot at each keypoint, crop, find the dots: they sit on the transformed
    keypoints (sub-pixel)."""
    rng = np.random.default_rng(0)
    points = np.stack([rng.uniform(35, 85, 6), rng.uniform(30, 70, 6)], -1)
    box = np.array([60., 50., 55., 50.])
    img = _blob_image(points)
    crop = VideoBBoxCrop(input_size=(96, 80))
    affine = bbox_crop_affine(box, (96, 80), np.deg2rad(rot_deg), scale, shift)
    results = dict(imgs=img[None], bbox=box[None], keypoints2d=points[None])
    # drive the jitter through a fixed "random" draw
    crop.scale_factor, crop.shift_factor, crop.rot_factor, crop.rot_prob = 1., 1., 1., 1.
    crop._jitter = lambda r: (scale, np.deg2rad(rot_deg), np.array(shift))
    out = crop(results)
    np.testing.assert_allclose(out['crop_affine'][0], affine, atol=1e-5)
    cropped = out['imgs'][0]
    assert cropped.shape == (80, 96, 3)
    kps = out['keypoints2d'][0]
    inner = kps[((kps > 4) & (kps < np.array([92, 76]))).all(-1)]
    assert len(inner) >= 4
    for kp in inner:
        assert np.linalg.norm(_centroid(cropped, kp) - kp) < .1  # a half-pixel slip: .35


def test_points_outside_the_crop_become_invalid():
    box = np.array([[50., 50., 20., 20.]] * 2)
    kp = np.array([[[50., 50.], [10., 50.], [59.9, 59.9]]] * 2)
    out = VideoBBoxCrop(input_size=32)(dict(imgs=np.zeros((2, 100, 100, 3), np.uint8),
                                            bbox=box, keypoints2d=kp,
                                            keypoints2d_valid=np.array([[1, 1, 1], [0, 1, 1]])))
    np.testing.assert_array_equal(out['keypoints2d_valid'], [[1, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(out['keypoints2d'][0, 0], [16., 16.], atol=1e-5)
    assert out['img_shape'] == (32, 32) and out['input_size'] == (32, 32)


def test_each_frame_uses_its_own_box():
    boxes = np.array([[30., 30., 20., 20.], [70., 60., 40., 40.]])
    kp = boxes[:, None, :2].copy()  # each box centre
    out = VideoBBoxCrop(input_size=64)(dict(imgs=np.zeros((2, 100, 100, 3), np.uint8),
                                            bbox=boxes, keypoints2d=kp))
    np.testing.assert_allclose(out['keypoints2d'][:, 0], [[32., 32.], [32., 32.]], atol=1e-5)
    np.testing.assert_allclose(out['crop_affine'][:, 0, 0], [64 / 20, 64 / 40], rtol=1e-6)


def test_rotation_turns_the_3d_targets_like_the_image():
    """Under a weak-perspective view of the box centre, the rotated 3D (x, y) offsets are
    the rotated 2D offsets; the global orientation is turned by the same rotation."""
    rng = np.random.default_rng(1)
    k3d = rng.normal(0, .3, (1, 29, 3))
    k3d -= k3d[:, :1]
    centre, s = np.array([60., 50.]), 80.  # pixels per metre
    kp2d = centre + s * k3d[..., :2]
    theta = np.zeros((1, 72))
    theta[0, :3] = [.3, -1., .2]
    results = dict(imgs=np.zeros((1, 100, 120, 3), np.uint8), bbox=np.array([[60., 50., 90., 90.]]),
                   keypoints2d=kp2d, keypoints3d=k3d.astype(np.float32), theta=theta,
                   gt_joints14=k3d[:, :14].astype(np.float32), rng=np.random.default_rng(3))
    crop = VideoBBoxCrop(input_size=90, rot_factor=30., rot_prob=1.)
    out = crop(results)
    angle = np.arctan2(out['crop_affine'][0, 1, 0], out['crop_affine'][0, 0, 0])
    assert abs(angle) > np.deg2rad(1)
    offsets2d = out['keypoints2d'][0] - out['keypoints2d'][0, :1]
    np.testing.assert_allclose(offsets2d / s, out['keypoints3d'][0, :, :2], atol=1e-4)
    np.testing.assert_allclose(out['keypoints3d'][0, :, 2], k3d[0, :, 2], atol=1e-6)
    np.testing.assert_allclose(out['gt_joints14'], out['keypoints3d'][:, :14], atol=1e-6)
    rot3 = Rotation.from_rotvec([0, 0, angle]).as_matrix()
    expected = Rotation.from_matrix(rot3 @ Rotation.from_rotvec(theta[0, :3]).as_matrix())
    np.testing.assert_allclose(out['theta'][0, :3], expected.as_rotvec(), atol=1e-5)
    np.testing.assert_array_equal(out['theta'][0, 3:], 0)


def test_jitter_is_a_function_of_the_rng():
    def run(seed):
        results = dict(imgs=np.zeros((2, 50, 50, 3), np.uint8),
                       bbox=np.array([[25., 25, 20, 20]] * 2), rng=np.random.default_rng(seed))
        crop = VideoBBoxCrop(input_size=32, scale_factor=.2, rot_factor=20, rot_prob=.5,
                             shift_factor=.1)
        return crop(results)['crop_affine']

    np.testing.assert_array_equal(run(5), run(5))
    assert np.abs(run(5) - run(6)).max() > 1e-3
    assert np.abs(run(5)[0] - run(5)[1]).max() == 0  # one draw per window
    with pytest.raises(KeyError, match='rng'):
        VideoBBoxCrop(scale_factor=.1)(dict(imgs=np.zeros((1, 8, 8, 3), np.uint8),
                                            bbox=np.array([[4., 4, 4, 4]])))
    with pytest.raises(ValueError, match=r'\(T, 4\)'):
        VideoBBoxCrop()(dict(imgs=np.zeros((2, 8, 8, 3), np.uint8), bbox=np.zeros((1, 4))))
