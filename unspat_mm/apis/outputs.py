"""Per-video result files, written to a temporary folder and moved into place only when
the whole video succeeded (no partial output)."""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List

import numpy as np

__all__ = ['ResultWriter', 'TRACK_FIELDS', 'instance_to_json']

# per-frame fields stacked into each track's .npz (besides frame_ids and the optional ones)
TRACK_FIELDS = ('bboxes', 'bbox_scores', 'detected', 'crop_boxes', 'theta', 'betas', 'camera',
                'keypoints3d', 'joints24', 'keypoints2d', 'sigma', 'uncertainty')


def _round(array, digits=5):
    return np.round(np.asarray(array, np.float64), digits).tolist()


def instance_to_json(inst: dict) -> dict:
    """One instance in mmpose's per-frame layout (``keypoints``/``keypoint_scores``/
    ``bbox``/``bbox_score``, plus ``track_id`` and the mesh parameters)."""
    return dict(track_id=int(inst['track_id']), bbox=[_round(inst['bbox'], 2)],
                bbox_score=round(float(inst['bbox_score']), 4),
                keypoints=_round(inst['keypoints'], 2),
                keypoint_scores=_round(inst['keypoint_scores'], 4),
                keypoints3d=_round(inst['keypoints3d']), theta=_round(inst['theta']),
                betas=_round(inst['betas']), camera=_round(inst['camera']),
                uncertainty=round(float(inst['uncertainty']), 5))


class ResultWriter:
    """Collects a video's results and writes, into ``out_dir``:

    - ``track_{id:03d}.npz`` per track (plain arrays, ``allow_pickle=False`` loads them):
      ``frame_ids`` (N,), ``bboxes`` (N, 4) x1 y1 x2 y2 px, ``bbox_scores`` (N,),
      ``detected`` (N,) bool, ``crop_boxes`` (N, 4) cx cy w h px, ``theta`` (N, 72)
      axis-angle radians, ``betas`` (N, 10), ``camera`` (N, 3) (s, tx, ty),
      ``keypoints3d`` (N, 29, 3) and ``joints24`` (N, 24, 3) root-relative metres (camera
      axes), ``keypoints2d`` (N, 29, 2) image px, ``sigma`` (N, 29), ``uncertainty``
      (N,) per-frame score, optionally ``vertices`` (N, 6890, 3) metres and
      ``uncertainty_maps`` (N, T, h, w); scalars ``track_id``, ``is_standin``;
    - ``results.json``: ``meta_info`` and ``instance_info``, one entry per frame with its
      ``instances`` (see :func:`instance_to_json`);
    - ``vis.mp4`` when a visualisation was written.

    Args:
        out_dir (str): destination folder (created; existing files of the same names
            are replaced only at :meth:`commit`).
        save_vertices (bool): store the meshes in the npz files.
        save_maps (bool): store the uncertainty maps in the npz files.
    """

    def __init__(self, out_dir: str, save_vertices: bool = False, save_maps: bool = False):
        self.out_dir = osp.abspath(out_dir)
        if osp.exists(self.out_dir) and not osp.isdir(self.out_dir):
            raise NotADirectoryError(f'out_dir {out_dir!r} exists and is not a folder')
        parent = osp.dirname(self.out_dir)
        os.makedirs(parent, exist_ok=True)
        self.tmp_dir = tempfile.mkdtemp(prefix=f'.{osp.basename(self.out_dir)}.tmp-', dir=parent)
        self.save_vertices, self.save_maps = save_vertices, save_maps
        self.tracks: Dict[int, Dict[str, list]] = {}
        self.frames: List[dict] = []

    def path(self, name: str) -> str:
        """Where a file is written until :meth:`commit`."""
        return osp.join(self.tmp_dir, name)

    def add_frame(self, frame_id: int, instances: List[dict]) -> None:
        self.frames.append(dict(frame_id=int(frame_id),
                                instances=[instance_to_json(i) for i in instances]))
        for inst in instances:
            rec = self.tracks.setdefault(int(inst['track_id']), {})
            values = dict(frame_ids=frame_id, bboxes=inst['bbox'], bbox_scores=inst['bbox_score'],
                          detected=inst['detected'], crop_boxes=inst['crop_box'],
                          theta=inst['theta'], betas=inst['betas'], camera=inst['camera'],
                          keypoints3d=inst['keypoints3d'], joints24=inst['joints24'],
                          keypoints2d=inst['keypoints'], sigma=inst['sigma'],
                          uncertainty=inst['uncertainty'])
            if self.save_vertices:
                values['vertices'] = inst['vertices']
            if self.save_maps:
                values['uncertainty_maps'] = inst['uncertainty_map']
            for key, value in values.items():
                rec.setdefault(key, []).append(value)

    def commit(self, meta_info: dict, is_standin: bool) -> List[str]:
        """Write the files and move them into ``out_dir``; returns their final paths."""
        names = []
        for tid, rec in sorted(self.tracks.items()):
            arrays = {k: np.asarray(v) for k, v in rec.items()}
            arrays = {k: v.astype(np.float32) if v.dtype == np.float64 else v
                      for k, v in arrays.items()}
            arrays['frame_ids'] = arrays['frame_ids'].astype(np.int64)
            name = f'track_{tid:03d}.npz'
            np.savez(self.path(name), track_id=np.int64(tid), is_standin=np.bool_(is_standin),
                     **arrays)
            names.append(name)
        with open(self.path('results.json'), 'w') as f:
            json.dump(dict(meta_info=meta_info, instance_info=self.frames), f)
        names.append('results.json')
        names += [n for n in os.listdir(self.tmp_dir) if n not in names]
        os.makedirs(self.out_dir, exist_ok=True)
        for stale in os.listdir(self.out_dir):  # tracks of an earlier run of this folder
            if stale.startswith('track_') and stale.endswith('.npz') and stale not in names:
                os.remove(osp.join(self.out_dir, stale))
        final = []
        for name in names:
            os.replace(self.path(name), osp.join(self.out_dir, name))
            final.append(osp.join(self.out_dir, name))
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        return final

    def abort(self) -> None:
        """Drop everything written so far (the temporary folder only)."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
