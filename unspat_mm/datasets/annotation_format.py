"""unspat-mm's own video annotation format, ``unspat-mm-video-v1``: one pickle-free ``.npz``.

One file per dataset split, one row per (person track, frame). It loads with
``np.load(path, allow_pickle=False)``: no object arrays, strings are fixed-width unicode.

=====================  ==============  =========================================================
key                    shape, dtype    meaning
=====================  ==============  =========================================================
``format``             () str          ``'unspat-mm-video-v1'``
``dataset_name``       () str          e.g. ``'3dpw'``, ``'h36m'``, ``'mpi_inf_3dhp'``,
                                       ``'pennaction'``, ``'posetrack'``, ``'insta_variety'``
``img_path``           (N,) str        frame file, relative to the dataset's ``data_root``
``sequence_id``        (N,) str        one person track (3DPW: ``'<sequence>/actor<k>'``)
``frame_index``        (N,) int64      the frame's number in its track, >= 0
``bbox``               (N, 4) float32  ``(cx, cy, w, h)`` pixels, tight around the person
``keypoints2d``        (N, 29, 2) f32  HybrIK's 29 joints (``HYBRIK_JOINT_NAMES``), pixels
``keypoints2d_valid``  (N, 29) f32     1 where the joint is labelled, else 0 (joint zeroed)
``keypoints3d``        (N, 29, 3) f32  metres, camera axes, root-relative (joint 0 subtracted)
``keypoints3d_valid``  (N, 29) f32     1 only for joints whose definition matches SMPL's
``theta``              (N, 72) f32     SMPL pose, axis-angle, global orientation in the camera
``betas``              (N, 10) f32     SMPL shape
``smpl_valid``         (N,) f32        1 where ``theta``/``betas`` are labels
``valid``              (N,) bool       frames an evaluation counts (3DPW: ``campose_valid``)
``gt_joints14``        (N, 14, 3) f32  optional: J14 joints, hip-midpoint-centred metres
``gt_joints17``        (N, 17, 3) f32  optional: Human3.6M-order joints, pelvis-centred metres
``gender``             (N,) str        optional: ``'neutral'``, ``'male'`` or ``'female'``
``cam_intrinsics``     (N, 3, 3) f32   optional: pinhole intrinsics, pixels
=====================  ==============  =========================================================

(sequence_id, frame_index) pairs are unique. :func:`save_video_annotations` casts numeric
arrays to the dtypes above, validates, and writes atomically (temp file + rename), never over
an existing file unless asked; :func:`load_video_annotations` validates what it reads.
Every error names the file (or the caller's ``source``), the field and what was expected.
"""
import os
import os.path as osp
import tempfile
import zipfile
from typing import Dict, Mapping

import numpy as np

from unspat_mm.structures.skeleton import NUM_H36M_JOINTS, NUM_HYBRIK_JOINTS, NUM_J14_JOINTS

__all__ = ['VIDEO_ANNOTATION_FORMAT', 'VIDEO_ANNOTATION_FIELDS', 'KNOWN_DATASET_NAMES',
           'save_video_annotations', 'load_video_annotations', 'validate_video_annotations']

VIDEO_ANNOTATION_FORMAT = 'unspat-mm-video-v1'
KNOWN_DATASET_NAMES = ('3dpw', 'h36m', 'mpi_inf_3dhp', 'pennaction', 'posetrack',
                       'insta_variety')
GENDERS = ('neutral', 'male', 'female')
_K = NUM_HYBRIK_JOINTS

# key -> (trailing shape after N, kind, required); kinds: 'str', 'int', 'float', 'flag'
# (0/1 float32), 'bool' (True/False, 0/1 accepted)
VIDEO_ANNOTATION_FIELDS = {
    'img_path': ((), 'str', True),
    'sequence_id': ((), 'str', True),
    'frame_index': ((), 'int', True),
    'bbox': ((4, ), 'float', True),
    'keypoints2d': ((_K, 2), 'float', True),
    'keypoints2d_valid': ((_K, ), 'flag', True),
    'keypoints3d': ((_K, 3), 'float', True),
    'keypoints3d_valid': ((_K, ), 'flag', True),
    'theta': ((72, ), 'float', True),
    'betas': ((10, ), 'float', True),
    'smpl_valid': ((), 'flag', True),
    'valid': ((), 'bool', True),
    'gt_joints14': ((NUM_J14_JOINTS, 3), 'float', False),
    'gt_joints17': ((NUM_H36M_JOINTS, 3), 'float', False),
    'gender': ((), 'str', False),
    'cam_intrinsics': ((3, 3), 'float', False),
}
_SCALARS = ('format', 'dataset_name')
_REQUIRED = _SCALARS + tuple(k for k, v in VIDEO_ANNOTATION_FIELDS.items() if v[2])
_KINDS = {'str': 'U', 'int': 'iu', 'float': 'fiu', 'flag': 'fiub', 'bool': 'biuf'}
_DTYPES = {'int': np.int64, 'float': np.float32, 'flag': np.float32, 'bool': np.bool_}


def _describe(shape, kind) -> str:
    dims = ', '.join(['N'] + [str(d) for d in shape])
    return f'({dims}{"," if not shape else ""}) {kind}'


def _check_field(key: str, value: np.ndarray, num: int, source: str) -> None:
    shape, kind, _ = VIDEO_ANNOTATION_FIELDS[key]
    where = f'{source}: field {key!r}'
    if value.dtype == object:
        raise ValueError(f'{where} is an object array; the format is pickle-free: store '
                         f'{_describe(shape, kind)} as a plain array')
    if value.shape != (num, ) + shape:
        raise ValueError(f'{where} has shape {value.shape}, expected '
                         f'{_describe(shape, kind)} with N = {num} rows (one per frame)')
    if value.dtype.kind not in _KINDS[kind]:
        raise ValueError(f'{where} has dtype {value.dtype}, expected {_describe(shape, kind)}')
    if kind == 'str':
        empty = np.flatnonzero(np.char.str_len(value) == 0)
        if len(empty):
            raise ValueError(f'{where} is empty at row {empty[0]}; expected non-empty strings')
        return
    if value.dtype.kind == 'f' and not np.isfinite(value).all():
        row = np.argwhere(~np.isfinite(value))[0][0]
        raise ValueError(f'{where} has a non-finite value (NaN/inf) at row {row}; expected '
                         'finite numbers (zero the value and mark it invalid instead)')
    if kind in ('flag', 'bool') and not np.isin(value, (0, 1)).all():
        idx = tuple(np.argwhere(~np.isin(value, (0, 1)))[0])
        raise ValueError(f'{where} must hold only 0/1, got {value[idx].item()!r} at row '
                         f'{idx[0]}')


def _check_scalar(arrays: Mapping, key: str, source: str) -> str:
    value = np.asarray(arrays[key])
    if value.shape != () or value.dtype.kind != 'U' or not str(value):
        raise ValueError(f'{source}: field {key!r} must be a non-empty 0-d unicode string, '
                         f'got {value.dtype} of shape {value.shape}')
    return str(value)


def validate_video_annotations(arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Check ``arrays`` against ``unspat-mm-video-v1`` (see the module docstring).

    Checks keys (required present, nothing unknown), shapes, dtypes, finiteness, 0/1 flags,
    positive box sizes, relative image paths, genders and that each (sequence_id,
    frame_index) occurs once.

    Args:
        arrays (Mapping[str, np.ndarray]): the fields, including ``format`` and
            ``dataset_name``.
        source (str): what the arrays came from (a file path), named in every error.

    Raises:
        KeyError: a required field is missing or an unknown field is present.
        ValueError: a field has the wrong shape, dtype or values.
    """
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise KeyError(f'{source}: missing field(s) {missing}; {VIDEO_ANNOTATION_FORMAT} '
                       f'needs {list(_REQUIRED)}')
    unknown = sorted(set(arrays) - set(_SCALARS) - set(VIDEO_ANNOTATION_FIELDS))
    if unknown:
        raise KeyError(f'{source}: unknown field(s) {unknown}; {VIDEO_ANNOTATION_FORMAT} '
                       f'allows {list(_SCALARS) + list(VIDEO_ANNOTATION_FIELDS)}')
    fmt = _check_scalar(arrays, 'format', source)
    if fmt != VIDEO_ANNOTATION_FORMAT:
        raise ValueError(f'{source}: field \'format\' is {fmt!r}, expected '
                         f'{VIDEO_ANNOTATION_FORMAT!r}')
    _check_scalar(arrays, 'dataset_name', source)
    img_path = np.asarray(arrays['img_path'])
    num = len(img_path) if img_path.ndim == 1 else -1
    if num < 1:
        raise ValueError(f'{source}: field \'img_path\' must be a non-empty (N,) array of '
                         f'frame paths, got shape {img_path.shape}')
    for key in VIDEO_ANNOTATION_FIELDS:
        if key in arrays:
            _check_field(key, np.asarray(arrays[key]), num, source)
    absolute = [p for p in img_path[:1000] if osp.isabs(str(p))]
    if absolute:
        raise ValueError(f'{source}: field \'img_path\' must be relative to the dataset\'s '
                         f'data_root, got the absolute path {absolute[0]!r}')
    bbox = np.asarray(arrays['bbox'])
    if (bbox[:, 2:] <= 0).any():
        row = np.flatnonzero((bbox[:, 2:] <= 0).any(1))[0]
        raise ValueError(f'{source}: field \'bbox\' has a non-positive width/height at row '
                         f'{row}: {bbox[row].tolist()}; expected (cx, cy, w, h) with w, h > 0')
    frame_index = np.asarray(arrays['frame_index'])
    if (frame_index < 0).any():
        raise ValueError(f'{source}: field \'frame_index\' must be >= 0, got '
                         f'{frame_index.min()}')
    if 'gender' in arrays and not np.isin(arrays['gender'], GENDERS).all():
        bad = str(np.asarray(arrays['gender'])[~np.isin(arrays['gender'], GENDERS)][0])
        raise ValueError(f'{source}: field \'gender\' has {bad!r}, expected one of {GENDERS}')
    seq = np.asarray(arrays['sequence_id'])
    order = np.lexsort((frame_index, seq))
    dup = (seq[order][1:] == seq[order][:-1]) & (frame_index[order][1:] ==
                                                 frame_index[order][:-1])
    if dup.any():
        row = order[1:][dup][0]
        raise ValueError(f'{source}: fields \'sequence_id\'/\'frame_index\' repeat '
                         f'({str(seq[row])!r}, {int(frame_index[row])}); expected one row '
                         'per frame of each person track')


def _canonical(arrays: Mapping[str, np.ndarray], dataset_name: str, source: str) -> dict:
    out = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            raise ValueError(f'{source}: field {key!r} is an object array; the format is '
                             'pickle-free: convert it to a plain numeric or unicode array')
        if value.dtype.kind == 'S':  # bytes -> unicode, so that nothing needs a pickle
            value = np.char.decode(value, 'utf-8')
        out[key] = value
    given = out.get('dataset_name')
    if given is not None and str(given) != dataset_name:
        raise ValueError(f'{source}: field \'dataset_name\' is {str(given)!r} but '
                         f'dataset_name={dataset_name!r} was passed')
    out.setdefault('format', np.array(VIDEO_ANNOTATION_FORMAT))
    out['dataset_name'] = np.array(str(dataset_name))
    return out


def save_video_annotations(path: str, arrays: Mapping[str, np.ndarray], dataset_name: str,
                           overwrite: bool = False) -> None:
    """Validate ``arrays`` and write them to ``path`` (``.npz``, uncompressed).

    Numeric arrays are cast to the format's dtypes (e.g. float64 -> float32, 0/1 ints ->
    bool for ``valid``); ``format`` and ``dataset_name`` are filled in. The file is written
    to a temporary file next to ``path`` and renamed, so a reader never sees half a file.

    Args:
        path (str): the output file; must end with ``.npz``.
        arrays (Mapping[str, np.ndarray]): the per-frame fields (module docstring).
        dataset_name (str): e.g. ``'3dpw'``.
        overwrite (bool): replace an existing file instead of refusing.
            Defaults to False.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        KeyError, ValueError: see :func:`validate_video_annotations`.
    """
    path = str(path)
    if not path.endswith('.npz'):
        raise ValueError(f'{path}: annotation files must end with .npz')
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} already exists; pass overwrite=True (the converters: '
                              '--overwrite) to replace it')
    arrays = _canonical(arrays, dataset_name, path)
    validate_video_annotations(arrays, path)  # before casting: 0.5 must not become True
    with np.errstate(over='ignore'):  # the check below names the field and row instead
        for key, (_, kind, _) in VIDEO_ANNOTATION_FIELDS.items():
            if key in arrays and kind in _DTYPES:
                arrays[key] = arrays[key].astype(_DTYPES[kind], copy=False)
    validate_video_annotations(arrays, path)  # e.g. float64 beyond float32's range
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix='.' + osp.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            np.savez(f, allow_pickle=False, **arrays)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:  # a hard link fails if path appeared meanwhile: never clobber
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f'{path} already exists (created while writing); pass '
                                      'overwrite=True to replace it') from None
            except OSError:  # no hard links on this filesystem
                os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.unlink(tmp)


def load_video_annotations(path: str) -> Dict[str, np.ndarray]:
    """Read and validate an ``unspat-mm-video-v1`` file.

    Returns:
        dict[str, np.ndarray]: every field (``format`` and ``dataset_name`` as 0-d unicode
        arrays).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable ``.npz`` (e.g. truncated), holds an object
            (pickled) array, or fails :func:`validate_video_annotations`.
    """
    path = str(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: annotation file not found')
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as err:  # zipfile.BadZipFile, EOFError, ValueError, OSError
        raise ValueError(f'{path}: not a readable .npz file (truncated or corrupt?): '
                         f'{type(err).__name__}: {err}') from err
    arrays = {}
    with npz:
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError(f'{path}: expected an .npz archive of named arrays, found a '
                             'single .npy array')
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError as err:
                if 'allow_pickle' in str(err):
                    raise ValueError(f'{path}: field {key!r} is an object array (it needs a '
                                     'pickle to load); the format is pickle-free: rewrite the '
                                     'file with tools/dataset_converters/') from None
                raise ValueError(f'{path}: field {key!r} cannot be read: {err}') from err
            except (zipfile.BadZipFile, EOFError, OSError) as err:
                raise ValueError(f'{path}: field {key!r} cannot be read (truncated or '
                                 f'corrupt file?): {type(err).__name__}: {err}') from err
    validate_video_annotations(arrays, path)
    return arrays
