"""Pluggable person detectors: each maps a BGR frame to (N, 5) boxes ``x1, y1, x2, y2,
score`` in that frame's pixels."""
import json
import os.path as osp
from typing import Dict, List, Optional, Union

import cv2
import numpy as np

__all__ = ['HOGPersonDetector', 'WholeImageDetector', 'JsonBoxes', 'MMDetPersonDetector',
           'build_detector', 'DETECTOR_CHOICES']

DETECTOR_CHOICES = ('hog', 'whole_image', 'FILE.json', 'an mmdet config (.py) with '
                    'det_checkpoint')


class HOGPersonDetector:
    """OpenCV's built-in HOG + linear SVM people detector (no download).

    Its window is 64x128 pixels, so people far from ~130 px tall are missed: the frame
    is rescaled to ``detect_height`` rows first (upscaled for small frames, downscaled
    for large ones, e.g. 4K), then boxes are mapped back. SVM margins become scores in
    (0, 1) with a logistic, and overlapping boxes are merged by NMS.

    Args:
        detect_height (int): frame height the detector runs at. Defaults to 720.
        hit_threshold (float): SVM margin below which windows are dropped.
            Defaults to 0.
        nms_iou (float): IoU above which the lower-scored box is dropped. Defaults to 0.4.
        win_stride (int): detection window step in pixels. Defaults to 8.
    """

    def __init__(self, detect_height: int = 720, hit_threshold: float = 0.,
                 nms_iou: float = 0.4, win_stride: int = 8):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.detect_height, self.hit_threshold = int(detect_height), hit_threshold
        self.nms_iou, self.win_stride = nms_iou, int(win_stride)

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> np.ndarray:
        scale = self.detect_height / frame.shape[0]
        small = cv2.resize(frame, None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(
            small, hitThreshold=self.hit_threshold, winStride=(self.win_stride, ) * 2,
            padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        rects = np.asarray(rects, np.float64) / scale
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        scores = 1 / (1 + np.exp(-2 * np.asarray(weights, np.float64).reshape(-1)))
        keep = cv2.dnn.NMSBoxes(rects.tolist(), scores.tolist(), 0., self.nms_iou)
        keep = np.asarray(keep, int).reshape(-1)
        return np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)


class WholeImageDetector:
    """One box, the whole frame, score 1 (a video already cropped to one person)."""

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> np.ndarray:
        h, w = frame.shape[:2]
        return np.array([[0, 0, w, h, 1.]], np.float32)


class JsonBoxes:
    """Boxes read from a json file, for users who ran their own detector or tracker.

    Layout: ``{"bbox_format": "xyxy" | "cxcywh" (optional, default "xyxy"),
    "frames": [{"frame_id": 0, "bboxes": [[...4 numbers...], ...], "scores": [...]
    (optional), "track_ids": [...] (optional)}, ...]}``. Frames not listed have no
    boxes. With ``track_ids`` on every box, the ids are used as they are and no tracker
    runs.
    """

    def __init__(self, path: str):
        if not osp.isfile(path):
            raise FileNotFoundError(f'Box file {path!r} does not exist.')
        try:
            with open(path) as f:
                data = json.load(f)
        except ValueError as err:
            raise ValueError(f'{path}: not valid json ({err})') from err
        if not isinstance(data, dict) or not isinstance(data.get('frames'), list):
            raise ValueError(f'{path}: expected {{"frames": [{{"frame_id", "bboxes", ...}}]}}')
        fmt = data.get('bbox_format', 'xyxy')
        if fmt not in ('xyxy', 'cxcywh'):
            raise ValueError(f'{path}: bbox_format must be "xyxy" or "cxcywh", got {fmt!r}')
        self.boxes: Dict[int, np.ndarray] = {}
        self.track_ids: Dict[int, np.ndarray] = {}
        has_ids = []
        for entry in data['frames']:
            fid = int(entry['frame_id'])
            boxes = np.asarray(entry.get('bboxes', []), np.float64).reshape(-1, 4)
            if fmt == 'cxcywh':
                boxes = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2,
                                        boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
            if (boxes[:, 2:] <= boxes[:, :2]).any():
                raise ValueError(f'{path}: frame {fid} has a box with x2 <= x1 or y2 <= y1')
            scores = np.asarray(entry.get('scores', np.ones(len(boxes))), np.float64)
            self.boxes[fid] = np.concatenate([boxes, scores.reshape(-1, 1)], axis=1)
            has_ids.append('track_ids' in entry)
            if 'track_ids' in entry:
                self.track_ids[fid] = np.asarray(entry['track_ids'], int).reshape(-1)
        self.with_track_ids = bool(has_ids) and all(has_ids)
        # exact cx, cy, w, h when given so: crops then match a dataset's to the bit
        self.cxcywh = fmt == 'cxcywh'
        self.raw = {int(e['frame_id']): np.asarray(e.get('bboxes', []), np.float64).reshape(-1, 4)
                    for e in data['frames']}

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> np.ndarray:
        return self.boxes.get(frame_index, np.zeros((0, 5))).astype(np.float64)


class MMDetPersonDetector:
    """An mmdet 3.x detector from the user's config and local checkpoint (class 0 =
    person, COCO), e.g. RTMDet or Faster R-CNN from the mmdet model zoo, downloaded by
    the user. Nothing is downloaded here.

    Args:
        config (str): mmdet config file.
        checkpoint (str): local checkpoint file (read with ``weights_only=True``).
        device (str): torch device. Defaults to ``'cpu'``.
        score_threshold (float): boxes below this score are dropped. Defaults to 0.3.
        person_label (int): the class index of persons in the detector's classes.
            Defaults to 0 (COCO).

    Boxes are clipped to the frame (those left empty are dropped).
    """

    def __init__(self, config: str, checkpoint: Optional[str], device: str = 'cpu',
                 score_threshold: float = 0.3, person_label: int = 0):
        for name, path in (('config', config), ('checkpoint', checkpoint)):
            if not path or not osp.isfile(path):
                raise FileNotFoundError(
                    f'mmdet detector {name} {path!r} does not exist: pass an mmdet config and '
                    'a checkpoint you downloaded (demo: --det CONFIG.py --det-checkpoint '
                    'FILE.pth), or use --det hog (built in).')
        try:
            from mmdet.apis import inference_detector, init_detector
            from mmdet.utils import register_all_modules
            from mmengine.config import Config
            register_all_modules(init_default_scope=False)
            cfg = Config.fromfile(config)
            cfg.default_scope = None  # mmdet's scope only while it runs (_scope)
            with self._scope():
                self.model = init_detector(cfg, checkpoint, device=device)
        except Exception as err:  # mmdet raises many kinds; say where it came from
            raise RuntimeError(f'Could not build the mmdet detector from {config} and '
                               f'{checkpoint}: {type(err).__name__}: {err}') from err
        self._infer = inference_detector
        self.score_threshold, self.person_label = score_threshold, person_label

    @staticmethod
    def _scope():
        """mmdet's registry scope for the duration of a call; the process's default
        scope (unspat-mm's models build in theirs) is left as it was."""
        from mmengine.registry import DefaultScope
        return DefaultScope.overwrite_default_scope('mmdet')

    def __call__(self, frame: np.ndarray, frame_index: int = 0) -> np.ndarray:
        with self._scope():
            pred = self._infer(self.model, frame).pred_instances.cpu().numpy()
        keep = (pred.labels == self.person_label) & (pred.scores >= self.score_threshold)
        # mmdet rescales boxes to the frame without clipping them, so boxes of a test
        # pipeline that pads (RTMDet's) reach into the padding below or right of the frame;
        # the crops would then centre on pixels that do not exist
        h, w = frame.shape[:2]
        boxes = np.clip(pred.bboxes[keep], 0, [w, h, w, h])
        scores = pred.scores[keep]
        inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return np.concatenate([boxes[inside], scores[inside, None]], axis=1).astype(np.float32)


def build_detector(det: Union[str, object] = 'hog', det_checkpoint: Optional[str] = None,
                   device: str = 'cpu', **kwargs):
    """``'hog'`` (default), ``'whole_image'``, a ``.json`` box file, an mmdet config
    ``.py`` (with ``det_checkpoint``), or any callable ``(bgr_frame, frame_index) ->
    (N, 5)``."""
    if callable(det):
        return det
    if not isinstance(det, str):
        raise TypeError(f'det must be a string or a callable, got {type(det).__name__}')
    if det == 'hog':
        return HOGPersonDetector(**kwargs)
    if det == 'whole_image':
        return WholeImageDetector()
    if det.endswith('.json'):
        return JsonBoxes(det)
    if det.endswith('.py'):
        return MMDetPersonDetector(det, det_checkpoint, device)
    raise ValueError(f'Unknown detector {det!r}; choose one of: {", ".join(DETECTOR_CHOICES)}.')


def boxes_per_frame(detector, frames) -> List[np.ndarray]:
    """Run ``detector`` over ``(index, frame)`` pairs: a list of (N, 5) arrays."""
    return [np.asarray(detector(frame, i), np.float64).reshape(-1, 5) for i, frame in frames]
