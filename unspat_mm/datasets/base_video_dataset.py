"""Video datasets as T-frame windows around a target (middle) frame."""
import os.path as osp
from typing import Dict, Optional

import numpy as np
from mmengine.dataset import BaseDataset

from unspat_mm.registry import DATASETS, TRANSFORMS
from unspat_mm.structures.skeleton import NUM_HYBRIK_JOINTS
from .feature_store import open_dataset_features

__all__ = ['BaseVideoDataset', 'window_rows']


def window_rows(center: int, start: int, stop: int, num_frames: int,
                frame_interval: int = 1) -> np.ndarray:
    """Rows of the ``num_frames`` window whose position ``num_frames // 2`` is row
    ``center`` of the sequence occupying rows ``[start, stop)``, ``frame_interval`` rows
    apart; rows beyond the sequence repeat its first / last frame."""
    offsets = (np.arange(num_frames) - num_frames // 2) * frame_interval
    return np.clip(center + offsets, start, stop - 1)


@DATASETS.register_module()
class BaseVideoDataset(BaseDataset):
    """Base of unspat-mm's video datasets: per-frame annotations, T-frame windows.

    Subclasses implement :meth:`load_annotations`, returning plain per-frame arrays (one
    row per frame, any order), and, for in-memory images, :meth:`load_images`:

    - ``sequence_id`` (N,) int or str: one person track; ``frame_index`` (N,) int.
    - images: ``img_path`` (N,) str, or ``img_index`` (N,) int rows of
      :meth:`load_images` (an (M, H, W, 3) uint8 RGB array, e.g. memory-mapped).
    - ``bbox`` (N, 4) ``(cx, cy, w, h)`` pixels (pixel (i, j) spans [i, i + 1) x [j, j + 1)).
    - optional, with defaults filled in: ``keypoints2d`` (N, K, 2) pixels and
      ``keypoints2d_valid`` (N, K); ``keypoints3d`` (N, K, 3) root-relative (joint 0)
      metres in camera axes and ``keypoints3d_valid`` (N, K) (K = 29 HybrIK joints by
      default); ``theta`` (N, 72) camera-frame axis-angle, ``betas`` (N, 10),
      ``smpl_valid`` (N,); ``valid`` (N,) bool (frames the metric counts); anything else
      per frame (e.g. ``occluded``, ``gt_joints14``) is passed through.

    Rows are sorted by (sequence, frame index). Item ``i`` is a window of ``num_frames``
    rows, ``frame_interval`` apart, whose middle (position ``num_frames // 2``) is its
    target frame; targets are every ``stride``-th frame of each sequence, and windows at
    the sequence ends repeat the edge frames, so with ``stride=1`` (the evaluation
    setting) every frame is the target of exactly one item.

    Indices may be *draw ids* ``epoch * len(self) + i`` (see :class:`DrawIdSampler`):
    item ``draw_id % len(self)`` is returned and the pipeline gets ``results['rng']``, a
    ``np.random.Generator`` seeded by ``[seed, draw_id]``, the only randomness transforms
    may use; augmentation is thus a pure function of (seed, epoch, index), whatever the
    sampling order or number of workers. Plain indices are draw ids of epoch 0.

    Args:
        num_frames (int): T, the window length (the paper: 16). Defaults to 16.
        frame_interval (int): rows between consecutive frames of a window (the paper: 1,
            consecutive frames). A short window spread over more time sees past an
            occlusion that outlasts it. Defaults to 1.
        stride (int): distance between the target frames of consecutive items.
            Defaults to 1.
        seed (int): seed of the augmentation streams. Defaults to 0.
        filter_cfg (dict, optional): ``dict(valid_only=True)`` drops (in training only)
            windows whose target frame is not ``valid``. Defaults to None.
        feature_cfg (dict, optional): read cached backbone features instead of frames
            (:mod:`~unspat_mm.datasets.feature_store`): ``dict(root='data/features',
            checkpoint=PATH)`` (or ``fingerprint=HEX`` instead of ``checkpoint``). The
            store is opened and checked when the annotations load (a missing, incomplete
            or mismatched one is an error then); windows carry it as
            ``results['features']`` for :class:`LoadVideoFeatures`. Defaults to None.
        **kwargs (dict): mmengine ``BaseDataset`` arguments (``pipeline``, ``test_mode``,
            ...).
    """
    METAINFO: dict = dict(dataset_name='video')
    NUM_KEYPOINTS = NUM_HYBRIK_JOINTS
    _META_KEYS = ('sequence_id', 'frame_index', 'valid', 'occluded')

    def __init__(self, num_frames: int = 16, stride: int = 1, seed: int = 0,
                 frame_interval: int = 1, feature_cfg: Optional[dict] = None, **kwargs):
        if int(num_frames) < 1 or int(stride) < 1 or int(frame_interval) < 1:
            raise ValueError('num_frames, stride and frame_interval must be >= 1, got '
                             f'{num_frames}, {stride}, {frame_interval}')
        self.num_frames, self.stride, self.seed = int(num_frames), int(stride), int(seed)
        self.frame_interval = int(frame_interval)
        self.ann: Dict[str, np.ndarray] = {}
        self._images: Optional[np.ndarray] = None
        self.feature_cfg = dict(feature_cfg) if feature_cfg else None
        self.feature_store = None
        # build transforms from unspat_mm's registry (it falls back to mmpose's and
        # mmengine's), so that the pipeline works whatever the default scope
        kwargs['pipeline'] = [TRANSFORMS.build(t) if isinstance(t, dict) else t
                              for t in kwargs.get('pipeline', [])]
        super().__init__(**kwargs)

    # -- to implement -------------------------------------------------------------------
    def load_annotations(self) -> Dict[str, np.ndarray]:
        raise NotImplementedError(f'{type(self).__name__} must implement load_annotations()')

    def load_images(self) -> Optional[np.ndarray]:
        """(M, H, W, 3) uint8 RGB frames addressed by ``img_index``; None for files."""
        return None

    @property
    def feature_store_name(self) -> str:
        """Name of this split's feature store: the annotation file's stem, else
        ``<dataset_name>_<split>``."""
        if getattr(self, 'ann_file', ''):
            return osp.splitext(osp.basename(self.ann_file))[0]
        return f'{self.metainfo.get("dataset_name")}_{getattr(self, "split", "all")}'

    # -- annotations and windows --------------------------------------------------------
    @property
    def images(self) -> Optional[np.ndarray]:
        if self._images is None:
            self._images = self.load_images()
        return self._images

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_images'] = None  # reloaded (memory-mapped) by each process, never pickled
        return state

    def _complete(self, ann: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        for key in ('sequence_id', 'frame_index', 'bbox'):
            if key not in ann:
                raise KeyError(f'{type(self).__name__}.load_annotations() must return {key!r}')
        num = len(ann['sequence_id'])
        if num == 0:
            raise ValueError(f'{type(self).__name__}.load_annotations() returned no frames')
        if ('img_path' in ann) == ('img_index' in ann):
            raise KeyError('annotations need exactly one of img_path (files) or img_index '
                           '(rows of load_images())')
        bad = [k for k, v in ann.items() if len(v) != num]
        if bad:
            raise ValueError(f'annotation arrays {bad} do not have one row per frame ({num})')
        k = self.NUM_KEYPOINTS
        defaults = dict(keypoints2d=np.zeros((num, k, 2), np.float32),
                        keypoints3d=np.zeros((num, k, 3), np.float32),
                        theta=np.zeros((num, 72), np.float32),
                        betas=np.zeros((num, 10), np.float32),
                        valid=np.ones(num, bool))
        out = {key: ann.get(key, value) for key, value in defaults.items()}
        for key in ('keypoints2d', 'keypoints3d'):
            out[f'{key}_valid'] = ann.get(f'{key}_valid',
                                          np.full((num, k), float(key in ann), np.float32))
        out['smpl_valid'] = ann.get('smpl_valid', np.full(num, float('theta' in ann), np.float32))
        out.update({key: value for key, value in ann.items() if key not in out})
        order = np.lexsort((out['frame_index'], out['sequence_id']))
        return {key: np.asarray(value)[order] for key, value in out.items()}

    def load_data_list(self):
        self.ann = self._complete(self.load_annotations())
        if self.feature_cfg:
            self.feature_store = open_dataset_features(self, self.feature_cfg)
        seq = self.ann['sequence_id']
        starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
        stops = np.r_[starts[1:], len(seq)]
        return [dict(center=int(c), start=int(a), stop=int(b))
                for a, b in zip(starts, stops) for c in range(a, b, self.stride)]

    def filter_data(self):
        if self.test_mode or not (self.filter_cfg or {}).get('valid_only', False):
            return self.data_list
        return [w for w in self.data_list if self.ann['valid'][w['center']]]

    def get_data_info(self, idx: int) -> dict:
        window = super().get_data_info(idx)
        rows = window_rows(window['center'], window['start'], window['stop'], self.num_frames,
                           self.frame_interval)
        info = {key: value[rows] for key, value in self.ann.items()
                if key not in self._META_KEYS}
        center = window['center']
        info.update(frame_rows=rows, center_index=self.num_frames // 2, sample_idx=idx,
                    sequence_id=self.ann['sequence_id'][center].item(),
                    frame_index=int(self.ann['frame_index'][center]),
                    valid=bool(self.ann['valid'][center]),
                    window_frame_indices=self.ann['frame_index'][rows])
        if 'occluded' in self.ann:
            info['occluded'] = bool(self.ann['occluded'][center])
            info['occluded_frames'] = self.ann['occluded'][rows]
        if self.feature_store is not None:
            info['features'] = self.feature_store  # a reference; LoadVideoFeatures reads
        elif 'img_index' in info:
            info['images'] = self.images  # a reference; LoadVideoFrames reads the rows
        return info

    def __getitem__(self, draw_id) -> dict:
        """Item ``draw_id % len(self)`` through the pipeline, with ``results['rng']``
        seeded by ``[seed, draw_id]`` (see the class docstring)."""
        if not self._fully_initialized:
            self.full_init()
        draw_id = int(draw_id)
        if draw_id < 0:
            raise IndexError(f'draw id must be >= 0, got {draw_id}')
        idx = draw_id % len(self)
        info = self.get_data_info(idx)
        info.update(draw_id=draw_id, epoch=draw_id // len(self),
                    rng=np.random.default_rng([self.seed, draw_id]))
        data = self.pipeline(info)
        if data is None:  # refetching another item would break determinism
            raise RuntimeError(f'{type(self).__name__}: the pipeline dropped item {idx} '
                               f'(draw id {draw_id}); video transforms must not return None')
        return data
