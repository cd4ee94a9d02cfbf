"""Per-frame errors of the video mesh-recovery protocol (VIBE / TCMR / MPS-Net / GLoT).

All inputs are in metres, all outputs in millimetres (``accel_error``: mm / frame^2).
Every function returns one value per frame (not the mean) so that callers can
group, filter and dump them; the reported number is the mean over frames.
"""
from typing import Optional, Sequence, Union

import numpy as np
from mmpose.evaluation.functional.mesh_eval import compute_similarity_transform

M_TO_MM = 1000.0

RootSpec = Union[None, int, Sequence[int]]


def _check_pair(pred: np.ndarray, gt: np.ndarray, what: str) -> None:
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f'{what}: pred and gt must both be (N, K, 3) arrays in metres, '
                         f'got {pred.shape} and {gt.shape}.')


def root_align(points: np.ndarray, root: RootSpec) -> np.ndarray:
    """Subtract the root joint from every joint.

    Args:
        points (np.ndarray): (N, K, 3) joints.
        root (None | int | Sequence[int]): index of the root joint, or indices
            whose mean is the root (the hip midpoint of J14 is ``J14_HIP_IDS``);
            ``None`` returns the points unchanged.

    Returns:
        np.ndarray: (N, K, 3) root-relative joints.
    """
    if root is None:
        return points
    ids = [root] if isinstance(root, (int, np.integer)) else list(root)
    if len(ids) == 0 or min(ids) < -points.shape[1] or max(ids) >= points.shape[1]:
        raise ValueError(f'root indices {ids} are out of range for {points.shape[1]} joints.')
    return points - points[:, ids].mean(axis=1, keepdims=True)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: RootSpec = None) -> np.ndarray:
    """Mean per-joint position error of each frame after root alignment.

    Args:
        pred (np.ndarray): (N, K, 3) predicted joints, metres.
        gt (np.ndarray): (N, K, 3) ground-truth joints, metres.
        root (None | int | Sequence[int]): root joint(s) subtracted from both
            skeletons before comparing (see :func:`root_align`). Defaults to None.

    Returns:
        np.ndarray: (N,) errors in millimetres.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    _check_pair(pred, gt, 'mpjpe')
    diff = root_align(pred, root) - root_align(gt, root)
    return np.linalg.norm(diff, axis=-1).mean(axis=-1) * M_TO_MM


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align each predicted frame onto its ground truth.

    Scale, rotation and translation solved in the least-squares sense by SVD,
    with the sign fix that forbids reflections (mmpose's
    ``compute_similarity_transform``, frame by frame).

    Args:
        pred (np.ndarray): (N, K, 3) predicted joints.
        gt (np.ndarray): (N, K, 3) ground-truth joints.

    Returns:
        np.ndarray: (N, K, 3) aligned prediction, in the units of ``gt``.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    _check_pair(pred, gt, 'procrustes_align')
    if len(pred) == 0:
        return pred.copy()
    return np.stack([compute_similarity_transform(p, g) for p, g in zip(pred, gt)])


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE after similarity Procrustes alignment (PA-MPJPE) of each frame.

    Args:
        pred (np.ndarray): (N, K, 3) predicted joints, metres.
        gt (np.ndarray): (N, K, 3) ground-truth joints, metres.

    Returns:
        np.ndarray: (N,) errors in millimetres.
    """
    gt = np.asarray(gt, np.float64)
    aligned = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - gt, axis=-1).mean(axis=-1) * M_TO_MM


def mpvpe(pred_verts: np.ndarray, gt_verts: np.ndarray) -> np.ndarray:
    """Mean per-vertex position error of each frame, without any alignment.

    Both meshes must be in SMPL's local frame (posed, no global translation),
    as the published 3DPW numbers use them.

    Args:
        pred_verts (np.ndarray): (N, V, 3) predicted vertices, metres.
        gt_verts (np.ndarray): (N, V, 3) ground-truth vertices, metres.

    Returns:
        np.ndarray: (N,) errors in millimetres.
    """
    pred, gt = np.asarray(pred_verts, np.float64), np.asarray(gt_verts, np.float64)
    _check_pair(pred, gt, 'mpvpe')
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) * M_TO_MM


def accel_error(pred_seq: np.ndarray,
                gt_seq: np.ndarray,
                valid: Optional[np.ndarray] = None,
                frame_index: Optional[np.ndarray] = None,
                root: RootSpec = None) -> np.ndarray:
    """Acceleration error of one sequence at each interior frame.

    At frame t: mean over joints of
    ``|| (x[t-1] - 2 x[t] + x[t+1])_pred - (x[t-1] - 2 x[t] + x[t+1])_gt ||``.
    The first and last frame have no second difference and are dropped, and
    so is every frame t whose triplet (t-1, t, t+1) contains an invalid frame
    or, when ``frame_index`` is given, is not three consecutive frame indices
    (a gap in the sequence is never bridged).

    Args:
        pred_seq (np.ndarray): (T, K, 3) predicted joints of one sequence in
            temporal order, metres.
        gt_seq (np.ndarray): (T, K, 3) ground-truth joints, metres.
        valid (np.ndarray, optional): (T,) bool, frames that may be used.
            Defaults to None.
        frame_index (np.ndarray, optional): (T,) increasing int frame numbers.
            Defaults to None.
        root (None | int | Sequence[int]): root joint(s) subtracted from both
            skeletons first (the published numbers use root-aligned joints).
            Defaults to None.

    Returns:
        np.ndarray: (M,) errors in mm / frame^2 of the kept interior frames,
        M <= T - 2, in temporal order.
    """
    pred, gt = np.asarray(pred_seq, np.float64), np.asarray(gt_seq, np.float64)
    _check_pair(pred, gt, 'accel_error')
    num = len(pred)
    if num < 3:
        accel_keep_mask(num, valid, frame_index)  # still reject malformed masks
        return np.zeros((0, ), np.float64)
    pred, gt = root_align(pred, root), root_align(gt, root)
    acc_pred = pred[:-2] - 2 * pred[1:-1] + pred[2:]
    acc_gt = gt[:-2] - 2 * gt[1:-1] + gt[2:]
    errors = np.linalg.norm(acc_pred - acc_gt, axis=-1).mean(axis=-1) * M_TO_MM
    return errors[accel_keep_mask(num, valid, frame_index)]


def accel_keep_mask(num_frames: int,
                    valid: Optional[np.ndarray] = None,
                    frame_index: Optional[np.ndarray] = None) -> np.ndarray:
    """Which interior frames of a sequence have a usable second difference.

    Args:
        num_frames (int): T, frames in the sequence (temporal order).
        valid (np.ndarray, optional): (T,) bool; a triplet (t-1, t, t+1) with
            an invalid frame is dropped. Defaults to None.
        frame_index (np.ndarray, optional): (T,) strictly increasing frame
            numbers; a triplet that is not three consecutive numbers is dropped.
            Defaults to None.

    Returns:
        np.ndarray: (max(T - 2, 0),) bool, entry i stands for frame i + 1.
    """
    keep = np.ones(max(num_frames - 2, 0), bool)
    if valid is not None:
        valid = np.asarray(valid, bool).reshape(-1)
        if len(valid) != num_frames:
            raise ValueError(f'accel: valid has {len(valid)} entries for {num_frames} frames.')
        keep &= valid[:-2] & valid[1:-1] & valid[2:]
    if frame_index is not None:
        frame_index = np.asarray(frame_index).reshape(-1)
        if len(frame_index) != num_frames:
            raise ValueError(f'accel: frame_index has {len(frame_index)} entries '
                             f'for {num_frames} frames.')
        step = np.diff(frame_index)
        if (step <= 0).any():
            raise ValueError('accel: frame_index must be strictly increasing; sort the '
                             'frames of the sequence and remove duplicates first.')
        keep &= (step[:-1] == 1) & (step[1:] == 1)
    return keep
