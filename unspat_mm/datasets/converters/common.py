"""Helpers shared by the converters: box from points, track splitting, writing."""
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional

import numpy as np

from unspat_mm.structures.skeleton import NUM_HYBRIK_JOINTS

__all__ = ['tight_bbox', 'fill_missing_rows', 'link_tracks', 'empty_rows', 'concat_rows',
           'check_outside_inputs', 'write_annotations', 'progress']


def progress(items: list, desc: str):
    """Iterate ``items`` under an mmengine progress bar (on the current stdout)."""
    from mmengine.utils import track_iter_progress
    print(desc)
    return track_iter_progress(items, file=sys.stdout) if len(items) else iter(())


def tight_bbox(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Tight ``(cx, cy, w, h)`` boxes around the valid points of each row.

    Args:
        points (np.ndarray): (N, K, 2) pixels.
        valid (np.ndarray): (N, K) bool.

    Returns:
        np.ndarray: (N, 4) float64; rows with no valid point are NaN. A degenerate extent
        (one point, or points on a line) gets 1 pixel, so that w, h > 0.
    """
    big = np.where(valid[..., None], points, np.nan)
    with warnings.catch_warnings():  # all-NaN rows are expected: they stay NaN
        warnings.simplefilter('ignore', RuntimeWarning)
        lo, hi = np.nanmin(big, axis=1), np.nanmax(big, axis=1)
    size = np.maximum(hi - lo, 1.)
    return np.concatenate([(lo + hi) / 2, size], axis=1)


def fill_missing_rows(values: np.ndarray, missing: np.ndarray) -> Optional[np.ndarray]:
    """Replace ``missing`` rows of one track's ``values`` by the nearest present row
    (the earlier one on ties); None when every row is missing."""
    present = np.flatnonzero(~missing)
    if not len(present):
        return None
    rows = np.arange(len(values))
    return values[present[np.argmin(np.abs(rows[:, None] - present[None]), axis=1)]]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (cx, cy, w, h) box against (M, 4) boxes."""
    lo = np.maximum(box[:2] - box[2:] / 2, boxes[:, :2] - boxes[:, 2:] / 2)
    hi = np.minimum(box[:2] + box[2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return inter / (np.prod(box[2:]) + np.prod(boxes[:, 2:], axis=1) - inter)


def link_tracks(video: np.ndarray, frame: np.ndarray, bbox: np.ndarray,
                min_iou: float = 0.1) -> np.ndarray:
    """Split videos in which a frame holds several people into person tracks.

    A video whose frames each hold one row keeps its id. Otherwise rows are linked frame
    by frame to the track whose last box overlaps most (greedy, IoU >= ``min_iou``); a row
    left over starts a new track, and ids become ``'<video>/track<k>'`` (k in order of
    appearance).

    Args:
        video (np.ndarray): (N,) str.
        frame (np.ndarray): (N,) int.
        bbox (np.ndarray): (N, 4) (cx, cy, w, h).
        min_iou (float): the least IoU that links a row to a track. Defaults to 0.1.

    Returns:
        np.ndarray: (N,) str track ids.
    """
    video = np.asarray(video).astype(str)
    out = video.astype(object)
    order = np.argsort(video, kind='stable')
    starts = np.flatnonzero(np.r_[True, video[order][1:] != video[order][:-1]])
    for rows in np.split(order, starts[1:]):
        if len(np.unique(frame[rows])) < len(rows):
            _link_video(rows, frame, bbox, min_iou, str(video[rows[0]]), out)
    return out.astype(str)


def _link_video(rows, frame, bbox, min_iou, name, out) -> None:
    tracks: List[dict] = []
    for f in np.unique(frame[rows]):
        here = rows[frame[rows] == f]
        open_tracks = [t for t in tracks if t['frame'] < f]
        pairs = []
        if open_tracks:
            last = np.stack([t['box'] for t in open_tracks])
            for r in here:
                pairs += [(iou, i, r) for i, iou in enumerate(_iou(bbox[r], last))]
        taken_tracks, taken_rows = set(), set()
        for iou, i, r in sorted(pairs, key=lambda p: (-p[0], p[2], p[1])):
            if iou < min_iou or i in taken_tracks or r in taken_rows:
                continue
            taken_tracks.add(i)
            taken_rows.add(r)
            open_tracks[i].update(box=bbox[r], frame=f)
            out[r] = open_tracks[i]['id']
        for r in here:
            if r not in taken_rows:
                tracks.append(dict(box=bbox[r], frame=f, id=f'{name}/track{len(tracks)}'))
                out[r] = tracks[-1]['id']


def empty_rows(num: int) -> Dict[str, np.ndarray]:
    """Label arrays of ``num`` rows with nothing labelled (zeros, all flags 0)."""
    k = NUM_HYBRIK_JOINTS
    return dict(keypoints2d=np.zeros((num, k, 2), np.float32),
                keypoints2d_valid=np.zeros((num, k), np.float32),
                keypoints3d=np.zeros((num, k, 3), np.float32),
                keypoints3d_valid=np.zeros((num, k), np.float32),
                theta=np.zeros((num, 72), np.float32), betas=np.zeros((num, 10), np.float32),
                smpl_valid=np.zeros(num, np.float32), valid=np.ones(num, bool))


def concat_rows(parts: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Concatenate per-row dicts with the same keys."""
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def check_outside_inputs(out_path: str, input_paths: List[str]) -> None:
    """Raise ValueError when ``out_path`` is, or lies inside, one of ``input_paths``."""
    out_abs = osp.realpath(out_path)
    for inp in input_paths:
        inp = osp.realpath(inp)
        if out_abs == inp or out_abs.startswith(inp.rstrip(osp.sep) + osp.sep):
            raise ValueError(f'{out_path}: refusing to write inside the input {inp}; the '
                             'converters never modify the user\'s data, choose another '
                             'output location')


def write_annotations(out_path: str, arrays: Dict[str, np.ndarray], dataset_name: str,
                      input_paths: List[str], overwrite: bool = False) -> str:
    """:func:`save_video_annotations` after :func:`check_outside_inputs`; returns the path."""
    from unspat_mm.datasets.annotation_format import save_video_annotations
    check_outside_inputs(out_path, input_paths)
    save_video_annotations(out_path, arrays, dataset_name, overwrite=overwrite)
    return out_path
