"""mmhuman3d HumanData ``.npz`` -> ``unspat-mm-video-v1`` arrays.

Reading and checking the file (restricted unpickler for its ``smpl`` / ``meta`` dicts) is
:mod:`.humandata_reader`; this module maps its 190 ``human_data`` keypoints
(:mod:`.joint_names`), boxes ``(x, y, w, h, conf)`` (mmhuman3d's, already enlarged by its
converters), ``smpl`` and ``meta.gender`` onto the project's fields.

Conventions assumed (those of mmhuman3d's converters for these datasets):

- ``keypoints3d`` are camera axes, metres, centred on the dataset's root (H36M,
  MPI-INF-3DHP: their own pelvis, slot ``pelvis_extra``); ``smpl.global_orient`` is in the
  camera frame (mmhuman3d rotates 3DPW's by ``cam_poses``).
- 2D labels: HybrIK's joint from its own human_data slot, else from mmhuman3d's approximate
  slots (``*_extra``, ``*_openpose``, ``headtop``); a slot counts when its mask and its
  confidence are > 0. 3D labels: exact slots only (joints mmhuman3d names after SMPL's:
  limbs for H36M/3DHP, whose pelvis/hips/neck are ``*_extra``), centred on SMPL's pelvis if
  labelled, else on ``pelvis_extra`` (joint 0 then stays invalid).
- ``bbox``: by default the tight box of the row's valid HybrIK 2D keypoints (the 3DPW
  converter's convention; configs pad it), the file's box without enough keypoints; or the
  file's boxes as they are (``bbox_source='file'``).
- ``gt_joints14`` (H36M) / ``gt_joints17`` (MPI-INF-3DHP): the 17 Human3.6M joints from
  their slots (rows lacking one get zeros and ``valid`` False).
- Person tracks: ``sequence_id`` is the image folder (InstaVariety: ``video_path``) and
  ``frame_index`` the last number in the file name (``frame_idx``); a folder with several
  people per frame (3DPW, PoseTrack) is split into tracks by box overlap
  (:func:`link_tracks`). mmhuman3d keeps every 5th (H36M) / 10th (3DHP train, PennAction)
  frame, so windows of such files span 5-10x more time than the paper's.
"""
import os.path as osp
import re
from typing import Dict, Optional

import numpy as np

from unspat_mm.structures.skeleton import J14_HIP_IDS, NUM_HYBRIK_JOINTS

from .common import (check_outside_inputs, empty_rows, link_tracks, progress, tight_bbox,
                     write_annotations)
from .humandata_reader import load_humandata
from .joint_names import J14_FROM_H36M, h36m_from_human_data_indices, hybrik_from_human_data_indices

__all__ = ['HUMANDATA_DATASETS', 'load_humandata', 'convert_humandata',
           'convert_humandata_file']

_CHUNK = 20000
# accepted --dataset names -> unspat-mm dataset_name
HUMANDATA_DATASETS = {'h36m': 'h36m', 'mpi_inf_3dhp': 'mpi_inf_3dhp', '3dpw': '3dpw',
                      'pw3d': '3dpw', 'pennaction': 'pennaction', 'penn_action': 'pennaction',
                      'posetrack': 'posetrack', 'insta_variety': 'insta_variety',
                      'instavariety': 'insta_variety'}


def _frame_number(path: str, row: int, source: str) -> int:
    digits = re.findall(r'\d+', osp.splitext(osp.basename(path))[0])
    if not digits:
        raise ValueError(f'{source}: field image_path[{row}] = {path!r} has no frame number '
                         'in its file name')
    return int(digits[-1])


def _relative(p: str, row: int, source: str, image_suffix: Optional[str],
              strip_prefix: str) -> str:
    p = p[len(strip_prefix):] if strip_prefix and p.startswith(strip_prefix) else p
    if osp.isabs(p):
        raise ValueError(f'{source}: field image_path[{row}] = {p!r} is absolute; pass '
                         'strip_prefix (--strip-prefix) to make it relative to data_root')
    suffix = image_suffix if image_suffix is not None else (
        '' if osp.splitext(p)[1] else '.jpg')
    return p + suffix


def _pick(kps: np.ndarray, approximate: bool):
    """HybrIK (N, 29, C-1) values and (N, 29) flags from human_data (N, 190, C)."""
    num = len(kps)
    values = np.zeros((num, NUM_HYBRIK_JOINTS, kps.shape[2] - 1))
    flags = np.zeros((num, NUM_HYBRIK_JOINTS), bool)
    for joint, slots in zip(*hybrik_from_human_data_indices(approximate)):
        for slot in reversed(slots):  # the preferred slot is written last, so it wins
            labelled = kps[:, slot, -1] > 0
            values[labelled, joint] = kps[labelled, slot, :-1]
            flags[:, joint] |= labelled
    return values, flags


def _boxes(hd: dict, rows: dict, bbox_source: str, path: str) -> np.ndarray:
    """(N, 4) float32 (cx, cy, w, h): see :func:`convert_humandata`'s ``bbox_source``."""
    x, y, w, h, conf = hd['bbox_xywh'].T
    bbox = np.stack([x + w / 2, y + h / 2, w, h], axis=1)
    use_kps = np.zeros(len(bbox), bool)
    if hd['keypoints2d'] is not None:
        enough = rows['keypoints2d_valid'].sum(1) >= 2
        bad_box = (w <= 0) | (h <= 0) | (conf <= 0) | ~np.isfinite(bbox).all(1)
        use_kps = enough & (bad_box | (bbox_source == 'keypoints'))
        bbox[use_kps] = tight_bbox(rows['keypoints2d'][use_kps],
                                   rows['keypoints2d_valid'][use_kps] > 0)
    unfixed = ~use_kps & ((w <= 0) | (h <= 0) | (conf <= 0) | ~np.isfinite(bbox).all(1))
    if unfixed.any():
        row = np.flatnonzero(unfixed)[0]
        raise ValueError(f'{path}: field bbox_xywh[{row}] = {hd["bbox_xywh"][row].tolist()} is '
                         'empty and the row has too few 2D keypoints to derive a box from')
    return bbox.astype(np.float32)


def convert_humandata(path: str, dataset: str, image_suffix: Optional[str] = None,
                      strip_prefix: str = '', bbox_source: str = 'keypoints'
                      ) -> Dict[str, np.ndarray]:
    """Rows of ``unspat-mm-video-v1`` from one HumanData file (see the module docstring).

    Args:
        path (str): the HumanData ``.npz`` (only read).
        dataset (str): one of :data:`HUMANDATA_DATASETS` (decides gt_joints14/17).
        image_suffix (str, optional): appended to every image path. Defaults to None
            (``'.jpg'`` for paths without an extension, InstaVariety's
            ``'<video>/<frame>'``).
        strip_prefix (str): removed from the start of image paths (files written with
            absolute paths); the result must be relative. Defaults to ''.
        bbox_source (str): ``'keypoints'``: the tight box of the row's valid HybrIK 2D
            keypoints (as the 3DPW converter's boxes; datasets pad them in the config),
            the file's box where fewer than 2 are labelled; ``'file'``: the file's
            ``bbox_xywh`` (mmhuman3d's, already enlarged 1.2x for most sets), the
            keypoints' box only where it is empty (conf 0). Defaults to ``'keypoints'``.
    """
    if bbox_source not in ('keypoints', 'file'):
        raise ValueError(f"bbox_source must be 'keypoints' or 'file', got {bbox_source!r}")
    if dataset not in HUMANDATA_DATASETS:
        raise ValueError(f'unknown dataset {dataset!r}; choose from {sorted(HUMANDATA_DATASETS)}')
    name = HUMANDATA_DATASETS[dataset]
    hd = load_humandata(path)
    num = len(hd['image_path'])
    rows = empty_rows(num)
    img = []
    paths = list(hd['image_path'])
    chunks = [paths[i:i + _CHUNK] for i in range(0, num, _CHUNK)]
    for chunk in progress(chunks, f'{name} ({path}), {num} rows in chunks of {_CHUNK}:'):
        for p in chunk:
            img.append(_relative(p, len(img), path, image_suffix, strip_prefix))
    rows['img_path'] = np.array(img)
    video = (hd['video_path'].astype(str) if hd['video_path'] is not None else
             np.array([osp.dirname(p) or '.' for p in hd['image_path']]))
    frame = (hd['frame_idx'].astype(np.int64) if hd['frame_idx'] is not None else np.array(
        [_frame_number(p, i, path) for i, p in enumerate(hd['image_path'])], np.int64))

    if hd['keypoints2d'] is not None:
        rows['keypoints2d'][:], flags = _pick(hd['keypoints2d'], approximate=True)
        rows['keypoints2d_valid'][:] = flags
    rows['bbox'] = _boxes(hd, rows, bbox_source, path)

    if hd['keypoints3d'] is not None:
        kp3d = hd['keypoints3d']
        values, flags = _pick(kp3d, approximate=False)
        root_slots = [0, h36m_from_human_data_indices()[0]]  # SMPL pelvis, else pelvis_extra
        has_root = np.zeros(num, bool)
        root = np.zeros((num, 3))
        for slot in reversed(root_slots):
            labelled = kp3d[:, slot, 3] > 0
            root[labelled], has_root = kp3d[labelled, slot, :3], has_root | labelled
        flags &= has_root[:, None]
        rows['keypoints3d'][:] = np.where(flags[..., None], values - root[:, None], 0.)
        rows['keypoints3d_valid'][:] = flags
        if name in ('h36m', 'mpi_inf_3dhp'):
            _add_h36m_joints(rows, kp3d, name)
    if hd['smpl'] is not None:
        rows['theta'][:], rows['betas'][:] = hd['smpl']['theta'], hd['smpl']['betas']
        rows['smpl_valid'][:] = 1
    if hd['gender'] is not None:
        rows['gender'] = hd['gender']
    rows['sequence_id'] = link_tracks(video, frame, rows['bbox'])
    rows['frame_index'] = frame
    return rows


def _add_h36m_joints(rows: dict, kp3d: np.ndarray, name: str) -> None:
    """gt_joints14 (H36M, hip-midpoint-centred) or gt_joints17 (3DHP, pelvis-centred)."""
    joints = kp3d[:, list(h36m_from_human_data_indices())]
    complete = (joints[..., 3] > 0).all(1)
    if not complete.any():
        return
    joints = joints[..., :3]
    if name == 'h36m':
        j14 = joints[:, list(J14_FROM_H36M)]
        rows['gt_joints14'] = np.where(complete[:, None, None],
                                       j14 - j14[:, list(J14_HIP_IDS)].mean(1, keepdims=True), 0.)
    else:
        rows['gt_joints17'] = np.where(complete[:, None, None], joints - joints[:, :1], 0.)
    rows['valid'] &= complete


def convert_humandata_file(in_path: str, out_path: str, dataset: str, overwrite: bool = False,
                           image_root: Optional[str] = None, **kwargs) -> str:
    """Convert ``in_path`` and write ``out_path``; ``kwargs`` go to
    :func:`convert_humandata`.

    Refuses to overwrite ``out_path`` unless ``overwrite``, and to write into the input's
    folder or ``image_root`` (the user's data stay untouched). With ``image_root``, every
    converted image path must exist under it. Returns ``out_path``.
    """
    inputs = [osp.dirname(osp.abspath(in_path))] + ([image_root] if image_root else [])
    check_outside_inputs(out_path, inputs)
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} already exists; pass overwrite=True (--overwrite) '
                              'to replace it')
    arrays = convert_humandata(in_path, dataset, **kwargs)
    if image_root:
        absent = [p for p in arrays['img_path'] if not osp.isfile(osp.join(image_root, p))]
        if absent:
            raise FileNotFoundError(f'{in_path}: {len(absent)} image(s) missing under '
                                    f'{image_root}, e.g. {osp.join(image_root, absent[0])}')
    return write_annotations(out_path, arrays, HUMANDATA_DATASETS[dataset], inputs, overwrite)
