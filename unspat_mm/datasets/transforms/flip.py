"""Horizontal flip of a whole video window, with the left/right swap of joints and pose."""
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from einops import rearrange
from mmcv.transforms import BaseTransform

from unspat_mm.registry import TRANSFORMS
from unspat_mm.structures.skeleton import (H36M_FLIP_PAIRS, HYBRIK_FLIP_PAIRS, J14_FLIP_PAIRS,
                                           NUM_HYBRIK_JOINTS, NUM_SMPL_JOINTS, SMPL_FLIP_PAIRS)

__all__ = ['RandomVideoFlip', 'flip_permutation', 'flip_joints', 'flip_smpl_pose', 'flip_twist']

# mirror about the camera's x = 0 plane, M = diag(-1, 1, 1)
_MIRROR = np.array([-1., 1., 1.])
# conjugating a rotation by M: M Rot(a, phi) M = Rot(M a, -phi) (M is a reflection), so
# the axis-angle r = phi a becomes -M r = (r_x, -r_y, -r_z)
_AXIS_ANGLE_MIRROR = np.array([1., -1., -1.])

_EVAL_JOINT_PAIRS = {'gt_joints14': (14, J14_FLIP_PAIRS), 'gt_joints17': (17, H36M_FLIP_PAIRS)}
# keys that do not change under a mirror (or are not per-frame geometry)
_INVARIANT_KEYS = frozenset({
    'rng', 'img_path', 'img_index', 'images', 'img_shape', 'ori_shape', 'sequence_id',
    'frame_index', 'frame_rows', 'center_index', 'sample_idx', 'draw_id', 'epoch', 'valid',
    'occluded', 'occluded_frames', 'occlusion_ratio', 'window_frame_indices', 'betas',
    'smpl_valid', 'focal', 'gender', 'dataset_name', 'flipped'})
# name fragments of keys that are probably geometric: such a key the flip cannot mirror is
# an error, never silently left unflipped
_GEOMETRIC_HINTS = ('keypoint', 'joint', 'box', 'pose', 'theta', 'transl', 'vert', 'cam',
                    'intrinsic', 'mask', 'affine', 'principal', 'orient', 'twist', 'phi',
                    'heatmap', 'center', 'centre', 'flow', 'seg', 'uv', 'img', 'image')
_AFTER_CROP_KEYS = ('crop_affine', 'crop_bbox', 'input_size')


def flip_permutation(num_joints: int, pairs: Sequence[Tuple[int, int]]) -> np.ndarray:
    """(num_joints,) indices with the ``pairs`` swapped: ``x[..., perm, :]`` swaps left and
    right."""
    perm = np.arange(num_joints)
    for a, b in pairs:
        if max(a, b) >= num_joints:
            raise ValueError(f'flip pair {(a, b)} is out of range for {num_joints} joints')
        perm[a], perm[b] = b, a
    return perm


def flip_joints(joints: np.ndarray, pairs: Sequence[Tuple[int, int]],
                width: Optional[float] = None) -> np.ndarray:
    """Mirror (..., K, D) joints and swap the left/right ``pairs``.

    ``width`` given: 2D pixel coordinates (pixel ``i`` spans ``[i, i + 1)``, so the image
    mirror ``i -> W - 1 - i`` maps ``x -> W - x``). ``width`` None: camera-frame points
    (metres), ``x -> -x``; root-relative stays root-relative (the roots are self-paired).
    """
    joints = np.asarray(joints)
    out = joints[..., flip_permutation(joints.shape[-2], pairs), :].copy()
    out[..., 0] = -out[..., 0] if width is None else width - out[..., 0]
    return out


def flip_smpl_pose(theta: np.ndarray) -> np.ndarray:
    """(..., 72) SMPL axis-angle pose (global orientation first, camera axes) -> the pose of
    the mirrored body: left/right joints swapped and ``(r_x, r_y, r_z) -> (r_x, -r_y, -r_z)``
    for every joint (the rotation conjugated by the mirror ``x -> -x``)."""
    theta = np.asarray(theta)
    if theta.shape[-1] != 3 * NUM_SMPL_JOINTS:
        raise ValueError(f'flip_smpl_pose: theta must be (..., 72) axis-angle, got {theta.shape}')
    axis_angle = rearrange(theta, '... (j c) -> ... j c', c=3)
    axis_angle = axis_angle[..., flip_permutation(NUM_SMPL_JOINTS, SMPL_FLIP_PAIRS), :]
    return rearrange(axis_angle * _AXIS_ANGLE_MIRROR, '... j c -> ... (j c)').astype(theta.dtype)


def flip_twist(twist: np.ndarray) -> np.ndarray:
    """Twist of SMPL joints 1..23 -> that of the mirrored pose: left/right swapped and the
    angle negated (the twist rotation about the rest bone ``t`` becomes one about ``M t`` by
    ``-phi``). ``twist`` is (..., 23) angles (radians) or (..., 23, 2) ``(cos, sin)``."""
    twist = np.asarray(twist)
    perm = flip_permutation(NUM_SMPL_JOINTS, SMPL_FLIP_PAIRS)[1:] - 1
    if twist.shape[-1] == NUM_SMPL_JOINTS - 1:
        return -twist[..., perm]
    if twist.shape[-2:] == (NUM_SMPL_JOINTS - 1, 2):
        return twist[..., perm, :] * np.array([1, -1], dtype=twist.dtype)
    raise ValueError(f'flip_twist: twist must be (..., 23) angles or (..., 23, 2) (cos, sin), '
                     f'got {twist.shape}')


def _flip_x(value: np.ndarray, column: int, width: Optional[float]) -> np.ndarray:
    out = np.array(value, copy=True)
    out[..., column] = -out[..., column] if width is None else width - out[..., column]
    return out


def _flip_intrinsics(matrix: np.ndarray, width: float) -> np.ndarray:
    # u = fx X/Z + s Y/Z + cx; with X -> -X, W - u needs s -> -s and cx -> W - cx
    out = np.array(matrix, copy=True)
    out[..., 0, 2] = width - out[..., 0, 2]
    out[..., 0, 1] = -out[..., 0, 1]
    return out


@TRANSFORMS.register_module()
class RandomVideoFlip(BaseTransform):
    """With probability ``prob``, mirror the whole window left-right (one decision for all T
    frames, drawn from ``results['rng']``). Place it after :class:`LoadVideoFrames` and
    before :class:`VideoBBoxCrop`: it works on full frames of width ``W``.

    Mirrored keys, those present (coordinates: pixel ``i`` spans ``[i, i + 1)``):

    - ``imgs`` (T, H, W, 3); masks ``*_mask`` / ``*_masks`` (T, H, W);
    - ``bbox_keys`` (T, 4) ``(cx, cy, w, h)``: ``cx -> W - cx``;
    - ``keypoints2d`` (T, K, 2) pixels: ``x -> W - x``, left/right swapped with
      ``keypoint_flip_pairs``; ``keypoints3d`` and ``keypoints3d_cam`` (T, K, 3) metres:
      ``x -> -x``, swapped; ``gt_joints14`` (T, 14, 3) / ``gt_joints17`` (T, 17, 3): same,
      with the J14 / Human3.6M pairs; each ``<key>_valid`` (T, K) swapped alike;
    - ``theta`` (T, 72): :func:`flip_smpl_pose`; ``twist`` (T, 23) or (T, 23, 2):
      :func:`flip_twist`;
    - ``transl`` (T, 3): ``x -> -x``. The flipped pose's body with this translation is the
      mirrored body exactly when the rest pelvis ``J0(betas)`` lies on the body model's
      ``x = 0`` plane; otherwise it is off by ``2 J0_x`` along x (the stand-in at betas 0:
      < 1e-9 m). ``keypoints3d_cam`` is mirrored exactly.
    - ``principal`` (T, 2) and ``cam_intrinsics`` (T, 3, 3) or (3, 3): ``cx -> W - cx`` (in
      the same continuous pixel convention as ``keypoints2d``) and the skew negated, so
      that projecting the mirrored 3D points gives the mirrored 2D points.

    Keys in ``_INVARIANT_KEYS`` (``betas``, ``focal``, ids, ...) and ``ignore_keys`` are left
    as they are. Any other key whose name looks geometric (contains 'joint', 'pose',
    'cam', 'mask', ...) raises a ``KeyError``: an unflipped geometric label would be
    silently wrong. Writes ``results['flipped']``: whether the window is now mirrored with
    respect to the source (a second flip turns it back to False).

    Args:
        prob (float): probability of flipping a window, in [0, 1]. Defaults to 0.5.
        bbox_keys (Sequence[str]): (T, 4) boxes to mirror, those present.
            Defaults to ('bbox', 'bbox_gt').
        keypoint_flip_pairs (Sequence[tuple], optional): left/right pairs of
            ``keypoints2d`` / ``keypoints3d`` / ``keypoints3d_cam``. Defaults to None
            (HybrIK's, which requires K = 29).
        ignore_keys (Sequence[str]): further keys known not to change under a mirror.
            Defaults to ().
    """

    def __init__(self, prob: float = .5, bbox_keys: Sequence[str] = ('bbox', 'bbox_gt'),
                 keypoint_flip_pairs: Optional[Sequence[Tuple[int, int]]] = None,
                 ignore_keys: Sequence[str] = ()):
        if not 0. <= float(prob) <= 1.:
            raise ValueError(f'RandomVideoFlip: prob must be in [0, 1], got {prob}')
        self.prob = float(prob)
        self.bbox_keys = tuple(bbox_keys)
        self.keypoint_flip_pairs = None if keypoint_flip_pairs is None else tuple(
            tuple(int(i) for i in pair) for pair in keypoint_flip_pairs)
        self.ignore_keys = frozenset(ignore_keys)

    def transform(self, results: dict) -> dict:
        imgs = results.get('imgs')
        if not isinstance(imgs, np.ndarray) or imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise ValueError('RandomVideoFlip: results["imgs"] must be (T, H, W, 3) frames (run '
                             f'LoadVideoFrames first), got {getattr(imgs, "shape", type(imgs))}')
        late = [key for key in _AFTER_CROP_KEYS if key in results]
        if late:
            raise ValueError(f'RandomVideoFlip: results already hold {late}: place the flip '
                             'before VideoBBoxCrop (it mirrors full frames about their centre)')
        plan = self._plan(results, *imgs.shape[:3])  # validates every key, flip or not
        flip = False
        if self.prob > 0:
            if not isinstance(results.get('rng'), np.random.Generator):
                raise KeyError('RandomVideoFlip needs results["rng"] (a np.random.Generator; '
                               'BaseVideoDataset provides it)')
            flip = bool(results['rng'].uniform() < self.prob)
        if flip:
            for key, fn in plan.items():
                results[key] = fn(results[key])
        results['flipped'] = bool(results.get('flipped', False)) != flip
        return results

    # -- one mirror function per key, shapes checked up front ---------------------------
    def _plan(self, results: dict, num: int, height: int, width: int) -> Dict[str, Callable]:
        plan = {}
        point_pairs = {}  # joint key -> pairs, for its `_valid`
        for key, value in results.items():
            if key == 'imgs' or key.endswith(('_mask', '_masks')):
                self._check(key, value, (num, height, width) + ((3, ) if key == 'imgs' else ()))
                plan[key] = lambda a: np.ascontiguousarray(a[:, :, ::-1])
            elif key in self.bbox_keys:
                self._check(key, value, (num, 4))
                plan[key] = lambda a: _flip_x(a, 0, width)
            elif key in ('keypoints2d', 'keypoints3d', 'keypoints3d_cam') + tuple(
                    _EVAL_JOINT_PAIRS):
                dim = 2 if key == 'keypoints2d' else 3
                count, pairs = self._joint_pairs(key, value)
                self._check(key, value, (num, count, dim))
                point_pairs[key] = pairs
                plan[key] = (lambda a, p=pairs, w=(width if dim == 2 else None):
                             flip_joints(a, p, w).astype(a.dtype))
            elif key == 'theta':
                self._check(key, value, (num, 3 * NUM_SMPL_JOINTS))
                plan[key] = flip_smpl_pose
            elif key == 'twist':
                if np.shape(value) not in ((num, 23), (num, 23, 2)):
                    self._check(key, value, (num, 23), ' or (T, 23, 2) (cos, sin)')
                plan[key] = flip_twist
            elif key == 'transl':
                self._check(key, value, (num, 3))
                plan[key] = lambda a: _flip_x(a, 0, None)
            elif key == 'principal':
                self._check(key, value, (num, 2))
                plan[key] = lambda a: _flip_x(a, 0, width)
            elif key == 'cam_intrinsics':
                if np.shape(value) != (3, 3):
                    self._check(key, value, (num, 3, 3), ' or (3, 3)')
                plan[key] = lambda a: _flip_intrinsics(a, width)
            elif key.endswith('_valid') and key[:-len('_valid')] in results:
                continue  # swapped with its joints below; per-frame flags do not change
            elif key in _INVARIANT_KEYS or key in self.ignore_keys:
                continue
            elif any(hint in key.lower() for hint in _GEOMETRIC_HINTS):
                raise KeyError(
                    f'RandomVideoFlip does not know how to mirror results[{key!r}]: convert it '
                    'to a supported key (see the class docstring) or drop it before the flip; '
                    'if it does not change under a left-right mirror, list it in ignore_keys')
        for key, pairs in point_pairs.items():
            if f'{key}_valid' in results:
                value = results[f'{key}_valid']
                self._check(f'{key}_valid', value, np.shape(results[key])[:2])
                plan[f'{key}_valid'] = (
                    lambda a, p=flip_permutation(np.shape(value)[1], pairs): a[:, p].copy())
        return plan

    def _joint_pairs(self, key: str, value) -> Tuple[int, tuple]:
        if key in _EVAL_JOINT_PAIRS:
            return _EVAL_JOINT_PAIRS[key]
        if self.keypoint_flip_pairs is None:
            return NUM_HYBRIK_JOINTS, HYBRIK_FLIP_PAIRS
        return (np.shape(value)[1] if np.ndim(value) == 3 else -1), self.keypoint_flip_pairs

    @staticmethod
    def _check(key: str, value, shape: tuple, alternative: str = '') -> None:
        if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
            hint = (' (the default keypoint_flip_pairs are HybrIK\'s 29 joints; pass '
                    'keypoint_flip_pairs for another skeleton)' if key.startswith('keypoints')
                    else '')
            raise ValueError(f'RandomVideoFlip: results[{key!r}] must be an array of shape '
                             f'{tuple(shape)}{alternative}, got '
                             f'{getattr(value, "shape", type(value))}{hint}')

    def __repr__(self):
        return (f'{type(self).__name__}(prob={self.prob}, bbox_keys={self.bbox_keys}, '
                f'keypoint_flip_pairs={self.keypoint_flip_pairs}, '
                f'ignore_keys={sorted(self.ignore_keys)})')
