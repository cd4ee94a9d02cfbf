"""Detections -> person tracks: mmdet's ByteTracker, gaps bridged, short tracks dropped,
boxes smoothed before cropping."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

__all__ = ['Track', 'run_byte_tracker', 'build_tracks', 'smooth_boxes', 'xyxy_to_cxcywh']


@dataclass
class Track:
    """One person over consecutive frames.

    Attributes:
        track_id (int): id, numbered from 0 in order of appearance.
        frame_ids (np.ndarray): (N,) consecutive frame indices.
        bboxes (np.ndarray): (N, 4) ``x1, y1, x2, y2`` pixels, detected or interpolated.
        scores (np.ndarray): (N,) detection scores (0 where interpolated).
        detected (np.ndarray): (N,) bool, True where a detection was matched.
        crop_boxes (np.ndarray): (N, 4) ``cx, cy, w, h`` the crops are made from
            (smoothed).
    """
    track_id: int
    frame_ids: np.ndarray
    bboxes: np.ndarray
    scores: np.ndarray
    detected: np.ndarray
    crop_boxes: np.ndarray

    @property
    def start(self) -> int:
        return int(self.frame_ids[0])

    @property
    def stop(self) -> int:
        """One past the last frame."""
        return int(self.frame_ids[-1]) + 1

    def __len__(self) -> int:
        return len(self.frame_ids)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)


def smooth_boxes(boxes: np.ndarray, sigma: float, causal: bool = False) -> np.ndarray:
    """Smooth (N, 4) ``cx, cy, w, h`` boxes over time: a Gaussian of ``sigma`` frames on
    the centre and the log-size (edges repeated); ``causal`` uses past frames only
    (a half-Gaussian), for live use. ``sigma <= 0`` returns the boxes unchanged."""
    if sigma <= 0 or len(boxes) < 2:
        return boxes.copy()
    values = np.concatenate([boxes[:, :2], np.log(np.maximum(boxes[:, 2:], 1e-6))], axis=1)
    if causal:
        radius = int(np.ceil(3 * sigma))
        weights = np.exp(-0.5 * (np.arange(radius + 1) / sigma)**2)
        padded = np.concatenate([np.repeat(values[:1], radius, axis=0), values])
        out = np.zeros_like(values)
        for lag, weight in enumerate(weights):
            out += weight * padded[radius - lag:radius - lag + len(values)]
        values = out / weights.sum()
    else:
        values = gaussian_filter1d(values, sigma, axis=0, mode='nearest')
    return np.concatenate([values[:, :2], np.exp(values[:, 2:])], axis=1)


def run_byte_tracker(detections: Sequence[np.ndarray], tracker_cfg: Optional[dict] = None
                     ) -> Dict[int, Dict[int, np.ndarray]]:
    """mmdet 3.3's ``ByteTracker`` (Kalman motion, two-stage IoU matching) over (N, 5)
    ``x1, y1, x2, y2, score`` detections per frame; returns ``{track_id: {frame_index:
    (5,) box and score}}``. Needs the ``lap`` package (``requirements/inference.txt``)."""
    try:
        import lap  # noqa: F401  (ByteTracker's own import fails silently)
    except ImportError as err:
        raise ImportError('Tracking needs `lap`: pip install -r requirements/inference.txt'
                          ) from err
    import mmdet.models  # noqa: F401  (registers ByteTracker and KalmanFilter)
    from mmdet.models.trackers import ByteTracker
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    cfg = dict(motion=dict(type='KalmanFilter'), obj_score_thrs=dict(high=0.5, low=0.1),
               init_track_thr=0.6, num_frames_retain=30, num_tentatives=3)
    cfg.update(tracker_cfg or {})
    tracker = ByteTracker(**cfg)
    tracks: Dict[int, Dict[int, np.ndarray]] = {}
    for frame_index, dets in enumerate(detections):
        dets = np.asarray(dets, np.float32).reshape(-1, 5)
        sample = DetDataSample(metainfo=dict(frame_id=frame_index))
        sample.pred_instances = InstanceData(bboxes=torch.from_numpy(dets[:, :4]),
                                             scores=torch.from_numpy(dets[:, 4]),
                                             labels=torch.zeros(len(dets), dtype=torch.long))
        out = tracker.track(sample)
        for box, score, tid in zip(out.bboxes.numpy(), out.scores.numpy(),
                                   out.instances_id.numpy()):
            tracks.setdefault(int(tid), {})[frame_index] = np.r_[box, score]
    return tracks


def build_tracks(raw: Dict[int, Dict[int, np.ndarray]], min_track_frames: int = 10,
                 smooth_sigma: float = 2., causal: bool = False,
                 exact_boxes: Optional[Dict[int, Dict[int, np.ndarray]]] = None,
                 renumber: bool = True) -> List[Track]:
    """Tracks from ``{track_id: {frame_index: (5,) x1, y1, x2, y2, score}}``.

    Gaps inside a track (frames where the tracker kept the person without a matched
    detection) are filled by linear interpolation of the box; tracks shorter than
    ``min_track_frames`` frames (from first to last detection) are dropped; crop boxes
    are smoothed by :func:`smooth_boxes`.

    Args:
        raw (dict): the tracker's output (or ids given with the boxes).
        min_track_frames (int): shorter tracks are dropped. Defaults to 10.
        smooth_sigma (float): box smoothing in frames; 0 keeps the boxes. Defaults to 2.
        causal (bool): smooth with past frames only.
        exact_boxes (dict, optional): ``{track_id: {frame_index: (4,) cx, cy, w, h}}``
            used unchanged as crop boxes where given (boxes read as ``cxcywh``).
        renumber (bool): number the kept tracks 0, 1, ... in order of appearance;
            False keeps the given ids (ids that came with the boxes).
    """
    tracks = []
    for tid in sorted(raw, key=lambda t: (min(raw[t]), t)):
        frames = sorted(raw[tid])
        first, last = frames[0], frames[-1]
        if last - first + 1 < min_track_frames:
            continue
        frame_ids = np.arange(first, last + 1)
        known = np.array(frames)
        values = np.stack([raw[tid][f] for f in frames])
        boxes = np.stack([np.interp(frame_ids, known, values[:, k]) for k in range(4)], axis=1)
        detected = np.isin(frame_ids, known)
        scores = np.zeros(len(frame_ids))
        scores[detected] = values[:, 4]
        crop = smooth_boxes(xyxy_to_cxcywh(boxes), smooth_sigma, causal)
        if exact_boxes is not None and tid in exact_boxes:
            for i, f in enumerate(frame_ids):
                if f in exact_boxes[tid]:
                    crop[i] = exact_boxes[tid][f]
        track_id = len(tracks) if renumber else int(tid)
        tracks.append(Track(track_id, frame_ids, boxes, scores, detected, crop))
    return tracks
