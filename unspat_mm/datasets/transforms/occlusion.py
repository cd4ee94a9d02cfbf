"""Synthetic occluders drifting across the frames of a window (video occlusion augmentation).

TCMR-style training pastes object cut-outs (Pascal VOC there) over the person. No such
cut-outs ship here, so patches are procedural (textured rectangles, ellipses, polygons, as
in the synthetic benchmark) or come from a user-given bank of RGBA patches
(:func:`save_occluder_bank` writes one, e.g. from VOC segmentations).
"""
import os.path as osp
import zipfile
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from unspat_mm.registry import TRANSFORMS

from .bbox_crop import to_cv2_affine
from .frames import check_video_frames
from .procedural import make_occluder

__all__ = ['RandomVideoOccluders', 'load_occluder_bank', 'save_occluder_bank']

_PROCEDURAL_RADIUS = 32.  # pixels; procedural patches are drawn at this size, then scaled


def save_occluder_bank(path: str, patches: Sequence[np.ndarray]) -> None:
    """Write RGBA patches, each (h, w, 4) uint8 (alpha 0 = transparent), to ``path`` (.npz,
    one array ``patch_00000``, ``patch_00001``, ... per patch; no pickles)."""
    arrays = {}
    for i, patch in enumerate(patches):
        _check_patch(np.asarray(patch), f'patch {i}')
        arrays[f'patch_{i:05d}'] = np.asarray(patch)
    if not arrays:
        raise ValueError('save_occluder_bank: no patches given')
    np.savez_compressed(path, **arrays)


def load_occluder_bank(path: str) -> List[np.ndarray]:
    """RGBA patches from an ``.npz`` (loaded with ``allow_pickle=False``): every (h, w, 4)
    uint8 array is one patch, every (N, h, w, 4) uint8 array N patches, in key order."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'occluder bank {path} does not exist')
    patches = []
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError('a single array, not an .npz archive')
        with data:
            arrays = {key: data[key] for key in sorted(data.files)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f'occluder bank {path} is not a readable .npz of plain arrays '
                         f'({type(err).__name__}: {err})') from err
    for key, value in arrays.items():
        for i, patch in enumerate(value if value.ndim == 4 else [value]):
            _check_patch(patch, f'{path}: array {key!r}' + (f'[{i}]' if value.ndim == 4 else ''))
            patches.append(patch)
    if not patches:
        raise ValueError(f'occluder bank {path} holds no patches')
    return patches


def _check_patch(patch: np.ndarray, where: str) -> None:
    if patch.ndim != 3 or patch.shape[-1] != 4 or patch.dtype != np.uint8 or min(
            patch.shape[:2]) < 2:
        raise ValueError(f'{where}: an occluder patch must be (h, w, 4) uint8 RGBA with h, w '
                         f'>= 2, got {patch.shape} {patch.dtype}')
    if not patch[..., 3].any():
        raise ValueError(f'{where}: the patch is fully transparent (alpha is all 0)')


@TRANSFORMS.register_module()
class RandomVideoOccluders(BaseTransform):
    """With probability ``prob``, paste 1..n occluders into the frames of a window; each
    drifts smoothly: its centre, scale and angle change linearly over the T frames, and it
    is visible during a contiguous run of frames (``duration``). All draws come from
    ``results['rng']``. Place it after :class:`VideoBBoxCrop` (sizes are fractions of the
    crop) and before the colour jitter (which then shades occluders like the scene).

    2D (and 3D) keypoints under an occluder stay valid on purpose: the model has to infer
    occluded joints from the visible body and the neighbouring frames, which is what the
    augmentation teaches. ``with_mask=True`` writes which pixels were covered, for
    analysis or for losses that want it.

    Reads ``imgs`` (T, H, W, 3) uint8; writes ``imgs`` and, with ``with_mask``,
    ``results[mask_key]`` (T, H, W) bool: pixels whose occluder alpha exceeds
    ``mask_threshold`` (OR-ed into an existing mask of that key). With the default
    threshold 0 every changed pixel is inside the mask.

    Args:
        prob (float): probability of occluding a window. Defaults to 0.5.
        num_occluders (tuple[int, int]): inclusive range of the number of occluders.
            Defaults to (1, 3).
        size (tuple[float, float]): range of an occluder's longer side at the middle of its
            drift, as a fraction of ``min(H, W)``. Defaults to (0.2, 0.5).
        center_range (tuple[float, float]): the start centre is uniform in this range of
            the frame's width and height. Defaults to (0.1, 0.9).
        max_shift (float): the centre moves over the window by up to this fraction of
            ``min(H, W)`` along each axis. Defaults to 0.25.
        max_scale_change (float): the scale changes over the window by a factor in
            ``[1 - f, 1 + f]``. Defaults to 0.3.
        max_rotation (float): the angle changes over the window by up to this (degrees);
            the start angle is uniform. Defaults to 30.0.
        duration (tuple[float, float]): range of the fraction of the T frames an occluder
            is visible (a contiguous run; (1, 1): the whole window). Defaults to (1.0, 1.0).
        bank_file (str, optional): ``.npz`` of RGBA patches (:func:`load_occluder_bank`).
            Defaults to None.
        bank_prob (float): with a bank, the probability that an occluder comes from it
            (otherwise procedural). Defaults to 1.0.
        with_mask (bool): write ``results[mask_key]``. Defaults to False.
        mask_key (str): key of the written mask. Defaults to 'occluder_masks'.
        mask_threshold (float): alpha above which a pixel counts as occluded.
            Defaults to 0.0.
    """

    def __init__(self, prob: float = .5, num_occluders: Tuple[int, int] = (1, 3),
                 size: Tuple[float, float] = (.2, .5), center_range: Tuple[float, float] = (.1, .9),
                 max_shift: float = .25, max_scale_change: float = .3, max_rotation: float = 30.,
                 duration: Tuple[float, float] = (1., 1.), bank_file: Optional[str] = None,
                 bank_prob: float = 1., with_mask: bool = False,
                 mask_key: str = 'occluder_masks', mask_threshold: float = 0.):
        self.num_occluders = tuple(int(v) for v in num_occluders)
        self.size, self.center_range = tuple(size), tuple(center_range)
        self.duration = tuple(duration)
        checks = {'prob in [0, 1]': 0 <= prob <= 1, 'bank_prob in [0, 1]': 0 <= bank_prob <= 1,
                  '1 <= num_occluders[0] <= num_occluders[1]':
                  1 <= self.num_occluders[0] <= self.num_occluders[1],
                  '0 < size[0] <= size[1]': 0 < self.size[0] <= self.size[1],
                  '0 < duration[0] <= duration[1] <= 1': 0 < duration[0] <= duration[1] <= 1,
                  '0 <= max_scale_change < 1': 0 <= max_scale_change < 1,
                  'max_shift >= 0 and max_rotation >= 0': max_shift >= 0 and max_rotation >= 0,
                  'mask_threshold in [0, 1)': 0 <= mask_threshold < 1}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f'RandomVideoOccluders: arguments must satisfy {bad}')
        self.prob, self.bank_prob = float(prob), float(bank_prob)
        self.max_shift, self.max_scale_change = float(max_shift), float(max_scale_change)
        self.max_rotation = float(max_rotation)
        self.bank_file = bank_file
        self.bank = load_occluder_bank(bank_file) if bank_file else []
        self.with_mask, self.mask_key = with_mask, mask_key
        self.mask_threshold = float(mask_threshold)

    def transform(self, results: dict) -> dict:
        imgs = check_video_frames(results.get('imgs'), 'RandomVideoOccluders')
        num, height, width = imgs.shape[:3]
        mask = np.zeros((num, height, width), bool)
        if self.prob > 0:
            rng = results.get('rng')
            if not isinstance(rng, np.random.Generator):
                raise KeyError('RandomVideoOccluders needs results["rng"] (a '
                               'np.random.Generator; BaseVideoDataset provides it)')
            if rng.uniform() < self.prob:
                out = imgs.astype(np.float32)
                for _ in range(rng.integers(self.num_occluders[0], self.num_occluders[1] + 1)):
                    self._paste(rng, out, mask)
                results['imgs'] = np.clip(np.round(out), 0, 255).astype(np.uint8)
        if self.with_mask:
            old = results.get(self.mask_key)
            if old is not None and np.shape(old) != mask.shape:
                raise ValueError(f'RandomVideoOccluders: results[{self.mask_key!r}] has shape '
                                 f'{np.shape(old)}, expected {mask.shape}; choose another mask_key')
            results[self.mask_key] = mask if old is None else np.asarray(old, bool) | mask
        return results

    def _patch(self, rng) -> np.ndarray:
        """(h, w, 4) float32 premultiplied RGBA, alpha in [0, 1]."""
        if self.bank and rng.uniform() < self.bank_prob:
            rgba = self.bank[rng.integers(len(self.bank))].astype(np.float32)
            rgba[..., 3] /= 255.
        else:
            shape, texture = make_occluder(rng, _PROCEDURAL_RADIUS)
            rgba = np.concatenate([texture, shape[..., None]], -1).astype(np.float32)
        rgba[..., :3] *= rgba[..., 3:]
        return rgba

    def _paste(self, rng, out: np.ndarray, mask: np.ndarray) -> None:
        num, height, width = out.shape[:3]
        patch = self._patch(rng)
        side = min(height, width)
        scale = rng.uniform(*self.size) * side / max(patch.shape[:2])
        change = rng.uniform(1 - self.max_scale_change, 1 + self.max_scale_change)
        # geometric interpolation of the scale, `scale` at the middle of the window
        scales = scale * change**np.linspace(-.5, .5, num)
        start = rng.uniform(*self.center_range, size=2) * np.array([width, height])
        shift = rng.uniform(-self.max_shift, self.max_shift, 2) * side
        angle0 = rng.uniform(0, 360)
        turn = rng.uniform(-self.max_rotation, self.max_rotation)
        length = max(1, int(round(rng.uniform(*self.duration) * num)))
        first = int(rng.integers(0, num - length + 1))
        frac = np.linspace(0, 1, num) if num > 1 else np.zeros(1)
        centre_in = np.array([patch.shape[1], patch.shape[0]]) / 2.
        for t in range(first, first + length):
            a = np.deg2rad(angle0 + turn * frac[t])
            rot = scales[t] * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            centre = start + shift * frac[t]
            affine = np.concatenate([rot, (centre - rot @ centre_in)[:, None]], 1)
            warped = cv2.warpAffine(patch, to_cv2_affine(affine), (width, height),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=(0, 0, 0, 0))
            alpha = warped[..., 3]
            out[t] = out[t] * (1 - alpha[..., None]) + warped[..., :3]
            mask[t] |= alpha > self.mask_threshold

    def __repr__(self):
        return (f'{type(self).__name__}(prob={self.prob}, num_occluders={self.num_occluders}, '
                f'size={self.size}, max_shift={self.max_shift}, max_scale_change='
                f'{self.max_scale_change}, max_rotation={self.max_rotation}, duration='
                f'{self.duration}, bank_file={self.bank_file!r}, with_mask={self.with_mask})')
