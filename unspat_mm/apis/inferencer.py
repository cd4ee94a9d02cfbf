"""UNSPATInferencer: from a video to per-person SMPL tracks (mmpose-style inferencer)."""
import logging
from collections import deque
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .crops import CropMaker, crop_to_image
from .detectors import JsonBoxes, boxes_per_frame, build_detector
from .frame_source import FrameSource
from .model_loading import init_unspat_model
from .outputs import ResultWriter
from .streaming import TorchBackend, TrackWindowBuffer
from .tracking import Track, build_tracks, run_byte_tracker

__all__ = ['UNSPATInferencer']

NO_PERSON = ('NO PERSON TRACKED: the results hold no tracks. Try --det whole_image (one '
             'person filling the video), a box file, an mmdet detector, or a lower '
             '--min-track-frames.')
STANDIN_WARNING = ('STAND-IN BODY MODEL (NOT SMPL): meshes and joints are those of a '
                   'mannequin with SMPL\'s layout, for tests and demos only.')


class UNSPATInferencer:
    """Video 3D human pose and shape with UNSPAT, in the manner of mmpose's inferencers.

    Built from a config and a checkpoint; called on a video file, a folder of images or a
    list of BGR frames, it detects people, tracks them, and predicts every frame of every
    track as the middle of a window of the config's ``num_frames`` frames,
    ``frame_interval`` apart (the test datasets' rule, clamped at the track's ends). The
    backbone runs once per frame and crop (features kept in a ring buffer), the neck and
    head once per output frame (:mod:`unspat_mm.apis.streaming`).

    Example::

        inferencer = UNSPATInferencer('configs/unspat_synthetic.py', 'iter_1400.pth')
        for frame in inferencer('video.mp4', out_dir='outputs/video'):
            for person in frame['predictions']:
                print(frame['frame_id'], person['track_id'], person['theta'].shape)

    Args:
        config (str | Config): model config.
        checkpoint (str, optional): weights-only checkpoint (``None``: initialised
            weights, for tests).
        device (str): torch device. Defaults to ``'cpu'``.
        det (str | callable): ``'hog'`` (OpenCV's, built in), ``'whole_image'``, a
            ``.json`` box file, an mmdet config ``.py`` (with ``det_checkpoint``), or a
            callable ``(bgr_frame, frame_index) -> (N, 5)``. Defaults to ``'hog'``.
        det_checkpoint (str, optional): the mmdet detector's checkpoint.
        body_model_dir (str, optional): body model folder, overriding the config's. With
            ``backend='onnx'`` the body model is the one baked into the export, and a
            folder given here must hold that same model file (else ValueError).
        smooth (float): Gaussian smoothing of the crop boxes over time, in frames
            (0: none). Defaults to 2.
        min_track_frames (int): tracks shorter than this are dropped. Defaults to 10.
        causal (bool): live mode, each frame predicted from its past only (its window
            ends at it). Defaults to False.
        backend (str): ``'pytorch'`` or ``'onnx'`` (files of
            ``tools/deployment/pytorch2onnx.py`` in ``onnx_dir``).
        onnx_dir (str, optional): folder of the exported ONNX files.
        save_vertices (bool): keep the meshes in the track files. Defaults to False.
        save_uncertainty_maps (bool): keep the (T, h, w) maps in the track files.
        tracker_cfg (dict, optional): overrides of the ByteTracker settings.
        cfg_options (dict, optional): config overrides.
        renderer (str): how the overlay draws meshes: ``'auto'`` (pyrender offscreen,
            EGL or OSMesa, where it works, else the numpy rasteriser), ``'pyrender'`` (an
            error if unavailable) or ``'numpy'``. Defaults to ``'auto'``.
    """

    def __init__(self, config, checkpoint: Optional[str] = None, device: str = 'cpu',
                 det: Union[str, Callable] = 'hog', det_checkpoint: Optional[str] = None,
                 body_model_dir: Optional[str] = None, smooth: float = 2.,
                 min_track_frames: int = 10, causal: bool = False, backend: str = 'pytorch',
                 onnx_dir: Optional[str] = None, save_vertices: bool = False,
                 save_uncertainty_maps: bool = False, tracker_cfg: Optional[dict] = None,
                 cfg_options: Optional[dict] = None, renderer: str = 'auto'):
        if backend not in ('pytorch', 'onnx'):
            raise ValueError(f"backend must be 'pytorch' or 'onnx', got {backend!r}")
        from unspat_mm.visualization.video_overlay import RENDERERS
        if renderer not in RENDERERS:
            raise ValueError(f'renderer must be one of {", ".join(RENDERERS)}; got '
                             f'{renderer!r}')
        self.renderer = renderer
        self.detector = build_detector(det, det_checkpoint, device)
        if backend == 'onnx':
            from .onnx_backend import OnnxBackend
            self.backend = OnnxBackend(onnx_dir, device, body_model_dir)
            self.info = self.backend.info
        else:
            model, _, info = init_unspat_model(config, checkpoint, device, body_model_dir,
                                               cfg_options)
            self.backend = TorchBackend(model)
            self.info = dict(info, focal=float(model.head.focal),
                             faces=model.head.body_model.faces.cpu().numpy())
        self.settings = self.info['settings']
        self.crop = CropMaker(self.settings.crop_cfg)
        self.smooth, self.min_track_frames, self.causal = smooth, min_track_frames, causal
        self.save_vertices, self.save_maps = save_vertices, save_uncertainty_maps
        self.tracker_cfg = tracker_cfg

    # -- detection and tracking --------------------------------------------------------
    def track(self, source: FrameSource, show_progress: bool = True) -> List[Track]:
        """Detect people in every frame and link them into :class:`Track` objects."""
        bar = ProgressBar(len(source)) if show_progress else None

        def frames():
            for item in source:
                yield item
                if bar is not None:
                    bar.update()
        detections = boxes_per_frame(self.detector, frames())
        if bar is not None:
            print()
        exact = None
        if isinstance(self.detector, JsonBoxes) and self.detector.with_track_ids:
            raw: Dict[int, Dict[int, np.ndarray]] = {}
            given = {f: ids for f, ids in self.detector.track_ids.items()
                     if 0 <= f < len(detections)}  # frames of this input only
            for f, ids in given.items():
                for tid, box in zip(ids, self.detector.boxes[f]):
                    raw.setdefault(int(tid), {})[f] = box
            if self.detector.cxcywh:
                exact = {}
                for f, ids in given.items():
                    for tid, box in zip(ids, self.detector.raw[f]):
                        exact.setdefault(int(tid), {})[f] = box
            given_ids = True
        else:
            raw = run_byte_tracker(detections, self.tracker_cfg)
            given_ids = False
        tracks = build_tracks(raw, self.min_track_frames, self.smooth, self.causal, exact,
                              renumber=not given_ids)
        print_log(f'{source.name}: {len(tracks)} track(s) of >= {self.min_track_frames} frames '
                  f'({sum(len(d) for d in detections)} detections in {len(source)} frames)',
                  logger='current', level=logging.INFO)
        if not tracks:
            print_log(f'{source.name}: {NO_PERSON}', logger='current', level=logging.WARNING)
        return tracks

    # -- per-frame results -------------------------------------------------------------
    def _instance(self, track: Track, frame_id: int, out: Dict[str, np.ndarray], i: int,
                  affine: np.ndarray) -> dict:
        k = frame_id - track.start
        size = self.crop.input_size
        keypoints = crop_to_image((out['keypoints2d'][i] + 0.5) * np.asarray(size), affine)
        u_map = out['uncertainty'][i]
        return dict(
            track_id=track.track_id, bbox=track.bboxes[k], bbox_score=track.scores[k],
            detected=bool(track.detected[k]), crop_box=track.crop_boxes[k], crop_affine=affine,
            theta=out['theta'][i], betas=out['betas'][i], camera=out['camera'][i],
            keypoints3d=out['keypoints3d'][i], joints24=out['joints24'][i],
            keypoints=keypoints, keypoint_scores=np.clip(1 - out['sigma'][i], 0, 1),
            sigma=out['sigma'][i], vertices=out['vertices'][i], uncertainty_map=u_map,
            # the target frame's mean artifact probability
            uncertainty=float(u_map[len(u_map) // 2].mean()))

    def _predict_stream(self, source: FrameSource, tracks: List[Track], keep_frames: bool
                        ) -> Iterator[tuple]:
        """Second pass: yields ``(frame_id, bgr_frame or None, instances)`` in order."""
        s = self.settings
        buffers: Dict[int, TrackWindowBuffer] = {}
        affines: Dict[tuple, np.ndarray] = {}
        ready: Dict[int, List[dict]] = {}
        pending = deque()
        lookahead = 0 if self.causal else (s.num_frames - 1 - s.num_frames // 2) * \
            s.frame_interval
        by_id = {t.track_id: t for t in tracks}
        for frame_id, bgr in source:
            active = [t for t in tracks if t.start <= frame_id < t.stop]
            windows = []
            if active:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                crops = []
                for t in active:
                    crop, affines[t.track_id, frame_id] = self.crop(
                        rgb, t.crop_boxes[frame_id - t.start])
                    crops.append(crop)
                feats = self.backend.features(np.stack(crops))
                for t, feat in zip(active, feats):
                    buf = buffers.setdefault(t.track_id, TrackWindowBuffer(
                        t.start, s.num_frames, s.frame_interval, self.causal))
                    windows += [(t.track_id, *w) for w in buf.push(frame_id, feat)]
                    if frame_id == t.stop - 1:
                        windows += [(t.track_id, *w) for w in buf.finish()]
                        del buffers[t.track_id]
            if windows:
                out = self.backend.predict(torch.stack([w[2] for w in windows]))
                for i, (tid, target, _, _) in enumerate(windows):
                    ready.setdefault(target, []).append(self._instance(
                        by_id[tid], target, out, i, affines.pop((tid, target))))
            pending.append((frame_id, bgr if keep_frames else None))
            while pending and pending[0][0] <= frame_id - lookahead:
                done_id, done_bgr = pending.popleft()
                yield done_id, done_bgr, sorted(ready.pop(done_id, []),
                                                key=lambda x: x['track_id'])
        if buffers:
            raise RuntimeError(f'tracks {sorted(buffers)} run past the last frame '
                               f'({len(source) - 1})')
        while pending:
            done_id, done_bgr = pending.popleft()
            yield done_id, done_bgr, sorted(ready.pop(done_id, []), key=lambda x: x['track_id'])

    def __call__(self, inputs: Union[str, Sequence[np.ndarray]], out_dir: Optional[str] = None,
                 max_frames: Optional[int] = None, render: bool = False,
                 return_vis: bool = False, show_progress: bool = True) -> Iterator[dict]:
        """Run on one video; a generator of per-frame results, in frame order.

        Args:
            inputs (str | list[np.ndarray]): video file, image folder or BGR frames.
            out_dir (str, optional): write the track ``.npz`` files, ``results.json`` and
                (``render``) ``vis.mp4`` there, once the whole video succeeded.
            max_frames (int, optional): use the first frames only.
            render (bool): draw the overlay (meshes, ids, uncertainty panel).
            return_vis (bool): put the overlay frame in each result.
            show_progress (bool): mmengine progress bars.

        Yields:
            dict: ``frame_id``, ``predictions`` (list of per-person dicts: ``track_id``,
            ``bbox``, ``theta`` (72,), ``betas`` (10,), ``camera``, ``keypoints3d`` (29, 3)
            and ``joints24`` (24, 3) metres, ``keypoints`` (29, 2) image px, ``sigma``,
            ``uncertainty``, ``uncertainty_map`` (T, h, w), ``vertices`` (6890, 3) metres),
            ``visualization`` (BGR overlay or None).
        """
        source = FrameSource(inputs, max_frames)
        writer = ResultWriter(out_dir, self.save_vertices, self.save_maps) \
            if out_dir is not None else None
        video, visualizer = None, None
        if self.info['is_standin']:
            print_log('!' * 79 + '\n' + STANDIN_WARNING + '\n' + '!' * 79, logger='current',
                      level=logging.WARNING)
        try:
            draw = render or return_vis
            if draw:  # before the detection pass: a missing renderer fails at once
                from unspat_mm.visualization import VideoOverlay
                visualizer = VideoOverlay(self.info['faces'], self.info['focal'],
                                          self.crop.input_size,
                                          STANDIN_WARNING if self.info['is_standin'] else None,
                                          renderer=self.renderer)
            tracks = self.track(source, show_progress)
            bar = ProgressBar(len(source)) if show_progress else None
            for frame_id, bgr, instances in self._predict_stream(source, tracks, draw):
                vis = visualizer(bgr, instances) if draw else None
                if render and writer is not None:
                    if video is None:
                        video = cv2.VideoWriter(writer.path('vis.mp4'),
                                                cv2.VideoWriter_fourcc(*'mp4v'), source.fps,
                                                (vis.shape[1], vis.shape[0]))
                    video.write(vis)
                if writer is not None:
                    writer.add_frame(frame_id, instances)
                if bar is not None:
                    bar.update()
                yield dict(frame_id=frame_id, predictions=instances,
                           visualization=vis if return_vis else None)
            if bar is not None:
                print()
            if video is not None:
                video.release()
                video = None
            if writer is not None:
                paths = writer.commit(self.meta_info(source, tracks), self.info['is_standin'])
                print_log(f'Results of {len(tracks)} track(s) in {out_dir}: '
                          f'{", ".join(p.split("/")[-1] for p in paths[:6])}'
                          + (' ...' if len(paths) > 6 else ''), logger='current')
        except BaseException:
            if video is not None:
                video.release()
            if writer is not None:
                writer.abort()
            raise

    def meta_info(self, source: FrameSource, tracks: List[Track]) -> dict:
        s = self.settings
        return dict(
            input=source.name, num_frames=len(source), fps=source.fps,
            frame_size=[int(source.frame_shape[1]), int(source.frame_shape[0])],
            config=s.config_name, trained_with=self.info['summary'],
            body_model_is_standin=bool(self.info['is_standin']),
            warning=STANDIN_WARNING if self.info['is_standin'] else None,
            notes=None if tracks else NO_PERSON,
            window=dict(num_frames=s.num_frames, frame_interval=s.frame_interval,
                        causal=self.causal),
            tracks=[dict(track_id=t.track_id, first_frame=t.start, last_frame=t.stop - 1)
                    for t in tracks],
            units=dict(keypoints3d='metres, root-relative, camera axes',
                       keypoints='image pixels', bbox='x1, y1, x2, y2 image pixels'))
