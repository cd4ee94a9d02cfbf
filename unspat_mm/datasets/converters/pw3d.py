"""3DPW's official ``sequenceFiles/<split>/*.pkl`` -> ``unspat-mm-video-v1`` arrays.

Each pickle (Python 2, read with ``encoding='latin1'`` through the restricted unpickler)
is a dict per sequence. Fields used (3DPW readme; N = image frames = ``len(img_frame_ids)``,
one list entry per actor):

- ``sequence`` str; ``genders`` ['m' | 'f']; ``betas`` [(>=10,)]; ``poses`` [(N, 72)]
  axis-angle, global orientation in world axes; ``jointPositions`` [(N, 72)]: the 24 SMPL
  joints in world coordinates, metres; ``campose_valid`` [(N,)] whether the camera pose is
  aligned to the image; ``cam_poses`` (N, 4, 4) world -> camera extrinsics
  (``x_cam = R x_world + t``); ``cam_intrinsics`` (3, 3); ``img_frame_ids`` (N,).

Row i of the 30 Hz arrays is image ``imageFiles/<sequence>/image_{i:05d}.jpg`` (as VIBE,
TCMR and mmhuman3d read it; ``img_frame_ids`` only maps the 60 Hz IMU stream to these
frames and is used here for the frame count only). ``poses2d`` (OpenPose detections) is
not used: the 2D keypoints are the ground-truth joints projected.

Output per (actor, frame): ``sequence_id`` ``'<sequence>/actor<k>'``, ``frame_index`` i;
``theta`` with the global orientation rotated into the camera (``R @ R_go``), ``betas[:10]``;
``keypoints3d`` the 24 SMPL joints in camera axes minus the pelvis (HybrIK's 5 tips are
invalid: they are mesh vertices, which need a body model); ``keypoints2d`` the camera-frame
joints projected with ``cam_intrinsics`` (joints behind the camera invalid); ``bbox`` the
tight box of the projected joints; ``valid`` = ``campose_valid``. On frames whose camera pose
is not valid every camera-frame label is unreliable, so there the keypoints are zeroed and
``keypoints2d_valid``, ``keypoints3d_valid`` and ``smpl_valid`` are 0 (the rows stay, as
context frames of windows, with ``theta`` / ``betas`` / ``bbox`` as computed).
"""
import glob
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from unspat_mm.structures.skeleton import NUM_SMPL_JOINTS
from unspat_mm.utils.safe_unpickle import safe_load_pickle

from .common import (check_outside_inputs, concat_rows, empty_rows, fill_missing_rows, progress,
                     tight_bbox, write_annotations)

__all__ = ['PW3D_SPLITS', 'PW3D_REQUIRED_FIELDS', 'load_pw3d_sequence',
           'convert_pw3d_sequence', 'convert_pw3d_split', 'convert_pw3d']

PW3D_SPLITS = ('train', 'validation', 'test')
PW3D_REQUIRED_FIELDS = ('sequence', 'genders', 'betas', 'poses', 'jointPositions',
                        'campose_valid', 'cam_poses', 'cam_intrinsics', 'img_frame_ids')
_GENDERS = {'m': 'male', 'f': 'female', 'male': 'male', 'female': 'female'}


def _array(value, path: str, field: str, shape: tuple, kind: str = 'f') -> np.ndarray:
    """``value`` as an array of ``shape`` (None = any length, checked later)."""
    try:
        arr = np.asarray(value, dtype=np.float64 if kind == 'f' else None)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{path}: field {field} is not numeric: {err}') from None
    ok = arr.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, arr.shape))
    if not ok:
        want = '(' + ', '.join('N' if s is None else str(s) for s in shape) + ')'
        raise ValueError(f'{path}: field {field} has shape {arr.shape}, expected {want}')
    if kind == 'f' and not np.isfinite(arr).all():
        raise ValueError(f'{path}: field {field} holds NaN/inf values')
    return arr


def load_pw3d_sequence(path: str) -> dict:
    """Read and check one 3DPW sequence pickle.

    Returns:
        dict: ``sequence`` str, ``num_frames`` N, ``cam_poses`` (N, 4, 4),
        ``cam_intrinsics`` (3, 3) and per actor lists ``genders`` ('male'/'female'),
        ``betas`` (10,), ``poses`` (N, 72), ``joints`` (N, 24, 3), ``campose_valid`` (N,)
        bool.

    Raises:
        UnsafePickleError / CorruptFileError: see :func:`safe_load_pickle`.
        KeyError: a required field is missing. ValueError: a field has the wrong type,
            shape or length; every message names ``path`` and the field.
    """
    data = safe_load_pickle(path, encoding='latin1')
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected the 3DPW sequence dict, found a '
                         f'{type(data).__name__}. Is this a 3DPW sequenceFiles/*.pkl?')
    missing = [k for k in PW3D_REQUIRED_FIELDS if k not in data]
    if missing:
        raise KeyError(f'{path}: missing field(s) {missing} of the 3DPW sequence dict (found '
                       f'{sorted(map(str, data))}). Is this a 3DPW sequenceFiles/*.pkl?')
    sequence = data['sequence']
    if isinstance(sequence, bytes):
        sequence = sequence.decode('latin1')
    if not isinstance(sequence, str) or not sequence or '/' in sequence:
        raise ValueError(f'{path}: field sequence must be the sequence name, got {sequence!r}')
    num = len(_array(data['img_frame_ids'], path, 'img_frame_ids', (None, )))
    out = dict(sequence=sequence, num_frames=num,
               cam_poses=_array(data['cam_poses'], path, 'cam_poses', (num, 4, 4)),
               cam_intrinsics=_array(data['cam_intrinsics'], path, 'cam_intrinsics', (3, 3)))
    per_actor = ('genders', 'betas', 'poses', 'jointPositions', 'campose_valid')
    for key in per_actor:
        if not isinstance(data[key], (list, tuple, np.ndarray)) or not len(data[key]):
            raise ValueError(f'{path}: field {key} must be a non-empty list with one entry '
                             f'per actor, got {type(data[key]).__name__}')
    counts = {key: len(data[key]) for key in per_actor}
    if len(set(counts.values())) != 1:
        raise ValueError(f'{path}: the per-actor fields disagree on the number of actors: '
                         f'{counts}')
    actors = range(counts['poses'])
    genders = [g.decode('latin1') if isinstance(g, bytes) else g for g in data['genders']]
    bad = [g for g in genders if g not in _GENDERS]
    if bad:
        raise ValueError(f'{path}: field genders has {bad[0]!r}, expected \'m\' or \'f\'')
    out['genders'] = [_GENDERS[g] for g in genders]
    out['betas'] = []
    for k in actors:
        betas = _array(data['betas'][k], path, f'betas[{k}]', (None, ))
        if len(betas) < 10:
            raise ValueError(f'{path}: field betas[{k}] has {len(betas)} values, expected >= 10')
        out['betas'].append(betas[:10])
    out['poses'] = [_array(data['poses'][k], path, f'poses[{k}]', (num, 72)) for k in actors]
    out['joints'] = [
        _array(data['jointPositions'][k], path, f'jointPositions[{k}]',
               (num, 3 * NUM_SMPL_JOINTS)).reshape(num, NUM_SMPL_JOINTS, 3) for k in actors]
    out['campose_valid'] = []
    for k in actors:
        flags = _array(data['campose_valid'][k], path, f'campose_valid[{k}]', (num, ))
        if not np.isin(flags, (0, 1)).all():
            raise ValueError(f'{path}: field campose_valid[{k}] must hold booleans')
        out['campose_valid'].append(flags.astype(bool))
    if not np.allclose(out['cam_poses'][:, 3], (0, 0, 0, 1), atol=1e-6):
        raise ValueError(f'{path}: field cam_poses must be 4x4 rigid transforms with last row '
                         '(0, 0, 0, 1)')
    return out


def convert_pw3d_sequence(seq: dict, source: str = '<3dpw>') -> Dict[str, np.ndarray]:
    """Rows of one sequence (all actors, frames in order), from
    :func:`load_pw3d_sequence`'s dict. See the module docstring for the conventions."""
    num, name = seq['num_frames'], seq['sequence']
    rot, trans = seq['cam_poses'][:, :3, :3], seq['cam_poses'][:, :3, 3]
    intrinsics = seq['cam_intrinsics']
    frames = np.arange(num)
    parts = []
    for k, (poses, joints) in enumerate(zip(seq['poses'], seq['joints'])):
        ok = seq['campose_valid'][k]
        cam = np.einsum('nij,nkj->nki', rot, joints) + trans[:, None]
        hom = np.einsum('ij,nkj->nki', intrinsics, cam)
        in_front = cam[..., 2] > 1e-6
        uv = hom[..., :2] / np.where(in_front, hom[..., 2], 1.)[..., None]
        bbox = tight_bbox(uv, in_front)
        no_box = ~np.isfinite(bbox).all(1)
        bbox = fill_missing_rows(bbox, no_box)
        if bbox is None:
            raise ValueError(f'{source}: actor {k} is behind the camera in every frame; '
                             'cannot place a box. Is cam_poses world -> camera?')
        orient = Rotation.from_matrix(rot @ Rotation.from_rotvec(poses[:, :3]).as_matrix())
        rows = empty_rows(num)
        n_smpl = NUM_SMPL_JOINTS
        valid2d = in_front & ok[:, None]
        rows['keypoints2d'][:, :n_smpl] = np.where(valid2d[..., None], uv, 0.)
        rows['keypoints2d_valid'][:, :n_smpl] = valid2d
        rows['keypoints3d'][:, :n_smpl] = np.where(ok[:, None, None], cam - cam[:, :1], 0.)
        rows['keypoints3d_valid'][:, :n_smpl] = ok[:, None]
        rows['theta'][:] = np.concatenate([orient.as_rotvec(), poses[:, 3:]], axis=1)
        rows['betas'][:] = seq['betas'][k]
        rows['smpl_valid'][:] = ok
        rows['valid'][:] = ok
        rows.update(
            img_path=np.array([f'imageFiles/{name}/image_{i:05d}.jpg' for i in frames]),
            sequence_id=np.full(num, f'{name}/actor{k}'), frame_index=frames.copy(),
            bbox=bbox.astype(np.float32), gender=np.full(num, seq['genders'][k]),
            cam_intrinsics=np.broadcast_to(intrinsics, (num, 3, 3)).astype(np.float32))
        parts.append(rows)
    return concat_rows(parts)


def _sequence_files(data_root: str, split: str) -> List[str]:
    folder = osp.join(data_root, 'sequenceFiles', split)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder}: no such folder; DATA_ROOT must hold 3DPW\'s '
                                'sequenceFiles/ and imageFiles/')
    files = sorted(glob.glob(osp.join(folder, '*.pkl')))
    if not files:
        raise FileNotFoundError(f'{folder}: no .pkl sequence files')
    return files


def convert_pw3d_split(data_root: str, split: str,
                       check_images: bool = True) -> Dict[str, np.ndarray]:
    """All sequences of ``DATA_ROOT/sequenceFiles/<split>/*.pkl`` (sorted by file name).

    Args:
        data_root (str): the 3DPW folder (holding ``sequenceFiles/``, ``imageFiles/``);
            only read.
        split (str): 'train', 'validation' or 'test'.
        check_images (bool): fail when a referenced image file is missing.
            Defaults to True.

    Returns:
        dict[str, np.ndarray]: the per-row fields of ``unspat-mm-video-v1``.
    """
    parts = []
    for path in progress(_sequence_files(data_root, split), f'3DPW {split}:'):
        rows = convert_pw3d_sequence(load_pw3d_sequence(path), source=path)
        if check_images:
            absent = [p for p in rows['img_path'] if not osp.isfile(osp.join(data_root, p))]
            if absent:
                raise FileNotFoundError(
                    f'{path}: {len(absent)} of its frames have no image, e.g. '
                    f'{osp.join(data_root, absent[0])}; unpack imageFiles/ into DATA_ROOT (or '
                    'pass check_images=False / --no-check-images)')
        parts.append(rows)
    return concat_rows(parts)


def convert_pw3d(data_root: str, out_dir: str, splits: Sequence[str] = PW3D_SPLITS,
                 overwrite: bool = False, check_images: bool = True) -> Dict[str, str]:
    """Convert the 3DPW splits into ``OUT_DIR/pw3d_<split>.npz``.

    Nothing is written until every split has converted; no file is overwritten unless
    ``overwrite``; ``out_dir`` must not lie inside ``data_root``.

    Returns:
        dict: split -> written path.
    """
    bad = [s for s in splits if s not in PW3D_SPLITS]
    if bad:
        raise ValueError(f'unknown 3DPW split(s) {bad}; choose from {PW3D_SPLITS}')
    outs = {s: osp.join(out_dir, f'pw3d_{s}.npz') for s in splits}
    for path in outs.values():
        check_outside_inputs(path, [data_root])
    exists = [p for p in outs.values() if osp.exists(p)]
    if exists and not overwrite:
        raise FileExistsError(f'{exists[0]} already exists; pass overwrite=True (--overwrite) '
                              'to replace it')
    converted = {s: convert_pw3d_split(data_root, s, check_images) for s in splits}
    return {s: write_annotations(outs[s], converted[s], '3dpw', [data_root], overwrite)
            for s in splits}
