"""Read an mmhuman3d HumanData ``.npz`` safely and check its fields.

The layout (``HumanData.dump``: ``np.savez_compressed`` of a dict): ``image_path`` (N,) str,
``bbox_xywh`` (N, 5) ``(x, y, w, h, conf)``, ``keypoints2d`` (N, 190, 3) /
``keypoints3d`` (N, 190, 4) in the ``human_data`` convention with ``*_mask`` (190,) -- or
only the masked slots when ``__keypoints_compressed__`` --, optional
``keypoints*_convention``, and dicts stored as 0-d object arrays (``smpl``, ``meta``),
which are read through the restricted unpickler.
"""
from typing import Dict, Optional

import numpy as np

from unspat_mm.utils.safe_unpickle import load_npz_safely
from .joint_names import NUM_HUMAN_DATA_KEYPOINTS

__all__ = ['load_humandata']

_GENDERS = {'m': 'male', 'f': 'female', 'male': 'male', 'female': 'female',
            'n': 'neutral', 'neutral': 'neutral'}


def _keypoints(data: dict, key: str, num: int, dims: int, path: str) -> Optional[np.ndarray]:
    """(N, 190, dims) full keypoints (zeros where the mask is 0), or None if absent."""
    if key not in data:
        return None
    mask_key = f'{key}_mask'
    conv = data.get(f'{key}_convention')
    if conv is not None and str(conv) != 'human_data':
        raise ValueError(f'{path}: field {key}_convention is {str(conv)!r}; only the '
                         '\'human_data\' (190 keypoints) convention is supported')
    kps = np.asarray(data[key], dtype=np.float64)
    mask = (np.asarray(data[mask_key], dtype=np.float64).reshape(-1) if mask_key in data
            else np.ones(NUM_HUMAN_DATA_KEYPOINTS))
    if mask.shape != (NUM_HUMAN_DATA_KEYPOINTS, ):
        raise ValueError(f'{path}: field {mask_key} has shape {mask.shape}, expected '
                         f'({NUM_HUMAN_DATA_KEYPOINTS},) (the human_data convention)')
    if kps.ndim != 3 or kps.shape[0] != num or kps.shape[2] != dims:
        raise ValueError(f'{path}: field {key} has shape {kps.shape}, expected (N, 190, {dims}) '
                         f'with N = {num} (len(image_path))')
    slots = np.flatnonzero(mask > 0)
    if kps.shape[1] == len(slots) and len(slots) != NUM_HUMAN_DATA_KEYPOINTS:
        full = np.zeros((num, NUM_HUMAN_DATA_KEYPOINTS, dims))
        full[:, slots] = kps  # __keypoints_compressed__: only the masked slots are stored
        kps = full
    elif kps.shape[1] != NUM_HUMAN_DATA_KEYPOINTS:
        raise ValueError(f'{path}: field {key} has {kps.shape[1]} keypoints per row; expected '
                         f'190 (human_data) or {len(slots)} (compressed by {mask_key})')
    if not np.isfinite(kps).all():
        raise ValueError(f'{path}: field {key} holds NaN/inf values')
    kps[:, mask <= 0] = 0
    return kps


def _dict_field(data: dict, key: str, path: str) -> Optional[dict]:
    if key not in data:
        return None
    value = data[key]
    value = value.item() if isinstance(value, np.ndarray) and value.shape == () else value
    if not isinstance(value, dict):
        raise ValueError(f'{path}: field {key} must be a dict (a 0-d object array), got '
                         f'{type(value).__name__}')
    return value


def _smpl(smpl: dict, num: int, path: str) -> Dict[str, np.ndarray]:
    missing = [k for k in ('global_orient', 'body_pose', 'betas') if k not in smpl]
    if missing:
        raise KeyError(f'{path}: field smpl lacks {missing} (found {sorted(smpl)})')
    parts = {}
    for key, size in (('global_orient', 3), ('body_pose', 69), ('betas', None)):
        value = np.asarray(smpl[key], dtype=np.float64)
        value = value.reshape(num, -1) if value.ndim and len(value) == num else value
        if value.ndim != 2 or len(value) != num or (size and value.shape[1] != size) or \
                (key == 'betas' and value.shape[1] < 10):
            raise ValueError(f'{path}: field smpl.{key} has shape {np.shape(smpl[key])}, '
                             f'expected (N, {size or ">=10"}) with N = {num}')
        if not np.isfinite(value).all():
            raise ValueError(f'{path}: field smpl.{key} holds NaN/inf values')
        parts[key] = value
    return dict(theta=np.concatenate([parts['global_orient'], parts['body_pose']], 1),
                betas=parts['betas'][:, :10])


def load_humandata(path: str) -> dict:
    """Read a HumanData ``.npz`` safely and check its fields.

    Returns:
        dict: ``image_path`` (N,) str, ``bbox_xywh`` (N, 5), ``keypoints2d`` (N, 190, 3) or
        None, ``keypoints3d`` (N, 190, 4) or None (decompressed, unlabelled slots zero),
        ``smpl`` dict(theta (N, 72), betas (N, 10)) or None, ``gender`` (N,) or None,
        ``video_path`` / ``frame_idx`` or None, ``config`` str or None.

    Raises:
        UnsafePickleError / CorruptFileError: see :func:`load_npz_safely`.
        KeyError / ValueError: naming ``path`` and the field.
    """
    data = load_npz_safely(path)
    missing = [k for k in ('image_path', 'bbox_xywh') if k not in data]
    if missing:
        raise KeyError(f'{path}: missing field(s) {missing} (found {sorted(data)}); is this a '
                       'HumanData .npz from mmhuman3d?')
    image_path = np.asarray(data['image_path'])
    if image_path.ndim != 1 or not len(image_path) or image_path.dtype.kind not in 'UO':
        raise ValueError(f'{path}: field image_path must be a non-empty (N,) array of '
                         f'strings, got {image_path.dtype} of shape {image_path.shape}')
    image_path = image_path.astype(str)
    num = len(image_path)
    bbox = np.asarray(data['bbox_xywh'], dtype=np.float64)
    if bbox.ndim != 2 or bbox.shape[0] != num or bbox.shape[1] not in (4, 5):
        raise ValueError(f'{path}: field bbox_xywh has shape {bbox.shape}, expected (N, 5) '
                         f'(x, y, w, h, conf) with N = {num}')
    if bbox.shape[1] == 4:
        bbox = np.concatenate([bbox, np.ones((num, 1))], axis=1)
    out = dict(image_path=image_path, bbox_xywh=bbox,
               keypoints2d=_keypoints(data, 'keypoints2d', num, 3, path),
               keypoints3d=_keypoints(data, 'keypoints3d', num, 4, path),
               config=str(data['config']) if 'config' in data else None,
               smpl=None, gender=None, video_path=None, frame_idx=None)
    smpl = _dict_field(data, 'smpl', path)
    if smpl:
        out['smpl'] = _smpl(smpl, num, path)
    meta = _dict_field(data, 'meta', path) or {}
    if 'gender' in meta:
        gender = np.asarray(meta['gender']).astype(str).reshape(-1)
        gender = np.broadcast_to(gender, (num, )) if gender.size == 1 else gender
        bad = [g for g in gender if g.lower() not in _GENDERS]
        if gender.shape != (num, ) or bad:
            raise ValueError(f'{path}: field meta.gender must hold N = {num} of '
                             f'{sorted(_GENDERS)}, got shape {gender.shape}, e.g. {bad[:1]}')
        out['gender'] = np.array([_GENDERS[g.lower()] for g in gender])
    for key in ('video_path', 'frame_idx'):
        if key in data:
            value = np.asarray(data[key])
            if value.shape != (num, ):
                raise ValueError(f'{path}: field {key} has shape {value.shape}, expected '
                                 f'({num},)')
            out[key] = value
    return out
