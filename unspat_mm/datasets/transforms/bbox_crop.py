"""Crop every frame of a window around its own box with one affine warp."""
from typing import Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from scipy.spatial.transform import Rotation

from unspat_mm.registry import TRANSFORMS

__all__ = ['VideoBBoxCrop', 'bbox_crop_affine', 'to_cv2_affine', 'apply_affine']


def bbox_crop_affine(bbox: np.ndarray, input_size: Tuple[int, int], rotation: float = 0.,
                     scale: float = 1., shift: Sequence[float] = (0., 0.)) -> np.ndarray:
    """(2, 3) affine taking continuous image coordinates to crop coordinates.

    The box ``(cx, cy, w, h)``, enlarged to the crop's aspect ratio and multiplied by
    ``scale``, maps onto the crop ``[0, W] x [0, H]`` (``input_size = (W, H)``), its centre
    moved by ``shift`` (fractions of the box) onto the crop centre, rotated by ``rotation``
    (radians; positive turns image content clockwise as displayed, y pointing down).
    """
    cx, cy, w, h = (float(v) for v in bbox)
    out_w, out_h = input_size
    aspect = out_w / out_h
    w, h = max(w, h * aspect), max(h, w / aspect)
    w, h = w * scale, h * scale
    if w <= 0 or h <= 0:
        raise ValueError(f'bbox_crop_affine: degenerate box {tuple(bbox)}')
    cx, cy = cx + shift[0] * w, cy + shift[1] * h
    c, s = np.cos(rotation), np.sin(rotation)
    rot_scale = np.array([[c, -s], [s, c]]) * (out_w / w)
    offset = np.array([out_w / 2, out_h / 2]) - rot_scale @ np.array([cx, cy])
    return np.concatenate([rot_scale, offset[:, None]], axis=1)


def to_cv2_affine(affine: np.ndarray) -> np.ndarray:
    """Continuous-coordinate affine -> the matrix ``cv2.warpAffine`` expects (OpenCV puts
    pixel centres at integers, our coordinates at half-integers)."""
    out = affine.astype(np.float64).copy()
    out[:, 2] += affine[:, :2].sum(1) * .5 - .5
    return out


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(..., 2) points -> (..., 2) ``affine @ [x, y, 1]``."""
    return points @ affine[:, :2].T + affine[:, 2]


def crop_keypoints2d(results: dict, affines: np.ndarray, input_size: Tuple[int, int]) -> None:
    """Map ``results['keypoints2d']`` (T, K, 2) into the crops by their (T, 2, 3) affines, in
    place, and mark keypoints that fall outside the ``input_size`` (w, h) crop invalid."""
    if 'keypoints2d' not in results:
        return
    kp = np.stack([apply_affine(k, a) for k, a in zip(results['keypoints2d'], affines)])
    results['keypoints2d'] = kp.astype(np.float32)
    inside = ((kp >= 0) & (kp < np.array(input_size))).all(-1)
    valid = np.asarray(results.get('keypoints2d_valid', np.ones(kp.shape[:2])))
    results['keypoints2d_valid'] = (valid * inside).astype(np.float32)


@TRANSFORMS.register_module()
class VideoBBoxCrop(BaseTransform):
    """Warp each frame's box to ``input_size``; move the 2D keypoints along.

    Each frame ``t`` is cropped around its own box ``results[bbox_key][t]`` (the boxes may
    be misaligned from frame to frame, as a tracker's are: SAM's job). Training jitter
    (scale, rotation, shift) is drawn once per window from ``results['rng']`` and applied
    to every frame. A rotation also turns the root-relative 3D targets about the camera's
    z axis (``rotate_keys`` and the global orientation ``theta[:3]``), the usual
    approximation for a crop near the optical axis; absolute camera-frame data (e.g.
    ``keypoints3d_cam``, ``transl``) is left as it is.

    Reads ``imgs`` (T, H, W, 3), ``bbox``-like (T, 4), ``keypoints2d`` (T, K, 2) and
    ``keypoints2d_valid`` (T, K). Writes the cropped ``imgs`` (T, h, w, 3), ``keypoints2d``
    in crop pixels, ``keypoints2d_valid`` zeroed outside the crop, ``crop_affine`` (T, 2,
    3), ``crop_bbox`` (T, 4) (the boxes actually cropped, before rotation), ``input_size``
    and ``img_shape``.

    Args:
        input_size (int | tuple): crop ``(w, h)`` in pixels. Defaults to (256, 256).
        bbox_key (str): which per-frame box to crop with (the synthetic set has the
            jittered tracker-like ``bbox`` and the tight ``bbox_gt``). Defaults to 'bbox'.
        padding (float): box enlargement factor. Defaults to 1.0.
        scale_factor (float): the scale jitter is uniform in ``[1 - f, 1 + f]``.
            Defaults to 0.0.
        rot_factor (float): rotation std in degrees (clipped to 2 std). Defaults to 0.0.
        rot_prob (float): probability of rotating. Defaults to 0.0.
        shift_factor (float): the shift is uniform in ``[-f, f]`` of the box per axis.
            Defaults to 0.0.
        border_value (int): pixel value outside the image. Defaults to 0.
        rotate_keys (Sequence[str]): root-relative (T, K, 3) arrays turned with a rotation.
            Defaults to ('keypoints3d', 'gt_joints14', 'gt_joints17').
    """

    def __init__(self, input_size: Union[int, Tuple[int, int]] = (256, 256), bbox_key='bbox',
                 padding: float = 1., scale_factor: float = 0., rot_factor: float = 0.,
                 rot_prob: float = 0., shift_factor: float = 0., border_value: int = 0,
                 rotate_keys: Sequence[str] = ('keypoints3d', 'gt_joints14', 'gt_joints17')):
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(
            int(v) for v in input_size)
        self.bbox_key = bbox_key
        self.padding, self.scale_factor, self.shift_factor = padding, scale_factor, shift_factor
        self.rot_factor, self.rot_prob = rot_factor, rot_prob
        self.border_value = border_value
        self.rotate_keys = tuple(rotate_keys)

    def _jitter(self, results):
        if not (self.scale_factor or self.shift_factor or (self.rot_factor and self.rot_prob)):
            return 1., 0., np.zeros(2)
        rng = results.get('rng')
        if rng is None:
            raise KeyError('VideoBBoxCrop: augmentation needs results["rng"] (a '
                           'np.random.Generator; BaseVideoDataset provides it)')
        scale = rng.uniform(1 - self.scale_factor, 1 + self.scale_factor)
        rot = np.clip(rng.normal(0, self.rot_factor), -2 * self.rot_factor, 2 * self.rot_factor)
        rot = np.deg2rad(rot) if rng.uniform() < self.rot_prob else 0.
        return scale, rot, rng.uniform(-self.shift_factor, self.shift_factor, 2)

    def transform(self, results: dict) -> dict:
        imgs = results['imgs']
        boxes = np.asarray(results[self.bbox_key], dtype=np.float64)
        if boxes.shape != (len(imgs), 4):
            raise ValueError(f'VideoBBoxCrop: {self.bbox_key} must be (T, 4) = '
                             f'({len(imgs)}, 4) (cx, cy, w, h), got {boxes.shape}')
        scale, rot, shift = self._jitter(results)
        boxes = boxes * np.array([1., 1., self.padding, self.padding])
        affines = np.stack([bbox_crop_affine(b, self.input_size, rot, scale, shift)
                            for b in boxes])
        results['imgs'] = np.stack([
            cv2.warpAffine(img, to_cv2_affine(a), self.input_size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(self.border_value, ) * 3)
            for img, a in zip(imgs, affines)])
        crop_keypoints2d(results, affines, self.input_size)
        if rot:
            self._rotate_3d(results, rot)
        results['crop_affine'] = affines.astype(np.float32)
        results['crop_bbox'] = boxes.astype(np.float32) * np.array([1, 1, scale, scale],
                                                                   np.float32)
        results['input_size'] = self.input_size
        results['img_shape'] = self.input_size[::-1]
        return results

    def _rotate_3d(self, results, rot):
        c, s = np.cos(rot), np.sin(rot)
        rot3 = np.array([[c, -s, 0.], [s, c, 0.], [0., 0., 1.]])
        for key in self.rotate_keys:
            if key in results:
                results[key] = (np.asarray(results[key]) @ rot3.T).astype(np.float32)
        if 'theta' in results:
            theta = np.asarray(results['theta'], dtype=np.float64).copy()
            root = Rotation.from_rotvec(theta[:, :3]).as_matrix()
            theta[:, :3] = Rotation.from_matrix(rot3 @ root).as_rotvec()
            results['theta'] = theta.astype(np.float32)

    def __repr__(self):
        return (f'{type(self).__name__}(input_size={self.input_size}, bbox_key={self.bbox_key!r}, '
                f'padding={self.padding}, scale_factor={self.scale_factor}, rot_factor='
                f'{self.rot_factor}, rot_prob={self.rot_prob}, shift_factor={self.shift_factor})')
