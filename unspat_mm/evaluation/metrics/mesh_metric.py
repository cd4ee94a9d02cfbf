"""MPJPE, PA-MPJPE, MPVPE and acceleration error of video mesh recovery."""
import logging
import os.path as osp
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from unspat_mm.registry import METRICS, MODELS
from unspat_mm.structures.skeleton import (H36M_JOINT_NAMES, J14_HIP_IDS, NUM_H36M_JOINTS,
                                           NUM_J14_JOINTS)

from ..functional import accel_error, accel_keep_mask, mpjpe, mpvpe, pa_mpjpe

# joint set -> (number of joints, key suffix, {root name: root indices})
_JOINT_SETS = {
    'j14': (NUM_J14_JOINTS, 'joints14', {'hip_mid': tuple(J14_HIP_IDS)}),
    'h36m17': (NUM_H36M_JOINTS, 'joints17', {
        'hip_mid': (H36M_JOINT_NAMES.index('left_hip'), H36M_JOINT_NAMES.index('right_hip')),
        'pelvis': (H36M_JOINT_NAMES.index('pelvis'), ),
    }),
}
_ACCEL_MODES = ('consecutive', 'filter_first', 'valid_centre')


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _lookup(sample: dict, key: str, required: bool = True) -> Any:
    """Read ``key`` from the top level of a data sample, else from its
    ``pred_instances`` / ``gt_instances`` (one instance, leading dim squeezed)."""
    if key in sample:
        return sample[key]
    nested = sample.get('pred_instances' if key.startswith('pred_') else 'gt_instances')
    if isinstance(nested, dict) and key in nested:
        value = _to_numpy(nested[key])
        if value.ndim == 0 or value.shape[0] != 1:
            raise ValueError(f'MeshMetric: {key} in an instances field must have one instance '
                             f'(leading dim 1), got shape {value.shape}.')
        return value[0]
    if required:
        raise KeyError(f'MeshMetric: data sample has no {key!r} (looked at the top level and in '
                       f'pred_instances / gt_instances); the model\'s predict() must set it.')
    return None


@METRICS.register_module()
class MeshMetric(BaseMetric):
    """Video mesh-recovery errors, evaluated per target (middle) frame.

    Every data sample handed to :meth:`process` (a dict, as mmengine's
    Evaluator passes them) describes one frame and carries, at its top level
    or inside ``pred_instances`` / ``gt_instances`` with one instance:

    - ``pred_joints14`` / ``gt_joints14``: (14, 3) J14 joints in metres (for
      ``joint_set='j14'``), or ``pred_joints17`` / ``gt_joints17``: (17, 3)
      joints in Human3.6M order (``joint_set='h36m17'``, used for the
      MPI-INF-3DHP test set, whose 17 joints the dataset maps to that order).
    - ``pred_vertices`` / ``gt_vertices`` (optional): (6890, 3) meshes in
      SMPL's local frame (no global translation), metres. MPVPE is reported
      over the valid frames that have both; absent in every frame, no MPVPE.
    - or, instead of ``gt_*`` (with ``body_model`` set): ``theta`` (72,), ``betas``
      (10,) and ``smpl_valid``; the metric then poses the body model (3DPW's protocol:
      the neutral SMPL mesh of the ground-truth parameters) and takes the ground-truth
      joints and mesh from it. Ground truth the dataset packed (H36M, 3DHP mocap joints)
      takes precedence.
    - ``sequence_id`` (str | int): one person track (give each actor of a
      multi-person 3DPW sequence its own id); ``frame_index`` (int): the
      frame's number in that track; ``valid`` (bool, default True).

    The errors of each frame are computed in :meth:`process` and only the
    per-frame numbers and joints are kept, so the collected results stay
    small (no vertices) and are plain numpy arrays for distributed
    collection. :meth:`compute_metrics` sorts by (sequence, frame index), so
    the result does not depend on the order frames arrive in, and returns, in
    millimetres, the means over valid frames:

    - ``MPJPE``: after subtracting the root (``root``) from both skeletons.
    - ``PA-MPJPE``: after similarity Procrustes alignment of each frame.
    - ``MPVPE``: raw vertex distance (see above).
    - ``Accel`` (mm / frame^2): mean over the second differences of the
      root-aligned joints of every sequence, the sequence ends excluded. With
      ``accel_mode='consecutive'`` (default) the difference at frame t is used
      only when t-1, t and t+1 are all present, valid and consecutive frame
      numbers, so it never spans an invalid frame or a gap. With
      ``'filter_first'`` invalid frames are removed first and the remaining
      ones are treated as consecutive (TCMR's evaluation of 3DPW, which reads
      only the valid frames). With ``'valid_centre'`` the second differences
      are taken over all frames of the sequence, invalid ones included, and
      kept where the centre frame t is valid (TCMR's evaluation of
      MPI-INF-3DHP); a difference that touches a frame without ground truth
      is dropped.

    Frames lacking enough context give no ``Accel`` (the key is then absent
    and a warning is logged). A (sequence, frame) pair seen twice is an error.

    Args:
        joint_set (str): ``'j14'`` or ``'h36m17'``. Defaults to ``'j14'``.
        root (str): ``'hip_mid'`` (midpoint of the two hips; the 3DPW
            protocol) or ``'pelvis'`` (``'h36m17'`` only; MPI-INF-3DHP).
            Defaults to ``'hip_mid'``.
        accel_mode (str): ``'consecutive'``, ``'filter_first'`` (3DPW) or
            ``'valid_centre'`` (MPI-INF-3DHP). Defaults to ``'consecutive'``.
        body_model (dict, optional): config of the body model (``SMPLBodyModel``) that
            turns ground-truth ``theta``/``betas`` into ground-truth joints and mesh, built
            on first use. Defaults to None (the dataset packs the ground truth).
        dump_path (str, optional): if set, :meth:`compute_metrics` also
            writes a ``.npz`` there with, per frame sorted by (sequence,
            frame): ``sequence_id`` (str), ``frame_index``, ``valid``,
            ``mpjpe``, ``pa_mpjpe``, ``mpvpe`` (NaN when absent), ``accel``
            (NaN where undefined) in mm, and ``pred_joints`` / ``gt_joints``
            (N, K, 3) in metres. For raw model outputs (e.g. vertices) use
            mmengine's ``DumpResults`` metric next to this one. Defaults to None.
        collect_device (str): see mmengine's ``BaseMetric``. Defaults to ``'cpu'``.
        prefix (str, optional): see mmengine's ``BaseMetric``. No prefix by
            default, so the keys are exactly ``'MPJPE'``, ``'PA-MPJPE'``,
            ``'MPVPE'`` and ``'Accel'``. Defaults to None.
        collect_dir (str, optional): see mmengine's ``BaseMetric``. Defaults to None.
    """
    default_prefix: Optional[str] = ''

    def __init__(self,
                 joint_set: str = 'j14',
                 root: str = 'hip_mid',
                 accel_mode: str = 'consecutive',
                 body_model: Optional[dict] = None,
                 dump_path: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if joint_set not in _JOINT_SETS:
            raise ValueError(f'MeshMetric: joint_set must be one of {sorted(_JOINT_SETS)}, '
                             f'got {joint_set!r}.')
        num_joints, suffix, roots = _JOINT_SETS[joint_set]
        if root not in roots:
            raise ValueError(f'MeshMetric: root {root!r} is not defined for joint_set '
                             f'{joint_set!r}; use one of {sorted(roots)}.')
        if accel_mode not in _ACCEL_MODES:
            raise ValueError(f'MeshMetric: accel_mode must be one of {_ACCEL_MODES}, '
                             f'got {accel_mode!r}.')
        if dump_path is not None and not str(dump_path).endswith('.npz'):
            raise ValueError(f'MeshMetric: dump_path must end with .npz, got {dump_path!r}.')
        self.joint_set = joint_set
        self.num_joints = num_joints
        self.pred_key, self.gt_key = f'pred_{suffix}', f'gt_{suffix}'
        self.root_ids = roots[root]
        self.accel_mode = accel_mode
        self.body_model_cfg = body_model
        self._body_model = None
        self.dump_path = dump_path

    def _add_smpl_ground_truth(self, data_samples: Sequence[dict]) -> None:
        """Pose the body model on the ground-truth theta/betas of the samples that carry
        SMPL but lack packed ground-truth joints or mesh; add what they lack."""
        todo = [s for s in data_samples
                if any(_lookup(s, k, required=False) is None for k in (self.gt_key, 'gt_vertices'))
                and 'theta' in s
                and 'betas' in s and bool(_to_numpy(s.get('smpl_valid', True)).item())]
        if not todo:
            return
        if self.body_model_cfg is None:
            if all(_lookup(s, self.gt_key, required=False) is not None for s in todo):
                return  # joints packed, no mesh: no MPVPE, as documented
            raise KeyError(f'MeshMetric: a sample has ground-truth theta/betas but no '
                           f'{self.gt_key}; give the metric body_model=dict(type='
                           "'SMPLBodyModel', model_dir=...) to compute it from SMPL.")
        if self._body_model is None:
            self._body_model = MODELS.build(self.body_model_cfg).eval()
        theta = torch.stack([torch.as_tensor(s['theta']) for s in todo]).float().cpu()
        betas = torch.stack([torch.as_tensor(s['betas']) for s in todo]).float().cpu()
        with torch.no_grad():
            body = self._body_model(theta, betas)
        for i, sample in enumerate(todo):
            for key in ('vertices', 'joints14', 'joints17'):
                if _lookup(sample, f'gt_{key}', required=False) is None:
                    sample[f'gt_{key}'] = body[key][i]

    def _joints(self, sample: dict, key: str) -> np.ndarray:
        joints = _to_numpy(_lookup(sample, key)).astype(np.float64)
        if joints.shape != (self.num_joints, 3):
            raise ValueError(f'MeshMetric: {key} must be ({self.num_joints}, 3) in metres for '
                             f'joint_set={self.joint_set!r}, got {joints.shape}.')
        return joints

    def _gt_joints(self, sample: dict, valid: bool) -> np.ndarray:
        """Ground-truth joints; NaN for an invalid frame that has none."""
        if not valid and _lookup(sample, self.gt_key, required=False) is None:
            return np.full((self.num_joints, 3), np.nan)
        return self._joints(sample, self.gt_key)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Compute the per-frame errors of a batch; append one result per sample.

        A frame the dataset marks invalid (``valid=False``) may lack ground truth (e.g.
        3DPW frames without a camera pose): it is kept, with NaN joints and errors, so
        that the acceleration error still sees the gap in its sequence."""
        if len(data_samples) == 0:
            return
        self._add_smpl_ground_truth(data_samples)
        valid_flags = []
        for sample in data_samples:
            valid = _lookup(sample, 'valid', required=False)
            valid_flags.append(True if valid is None else bool(_to_numpy(valid).item()))
        pred = np.stack([self._joints(s, self.pred_key) for s in data_samples])
        gt = np.stack([self._gt_joints(s, valid) for s, valid in zip(data_samples, valid_flags)])
        has_gt = np.isfinite(gt).all(axis=(1, 2))
        bad = [i for i, valid in enumerate(valid_flags) if valid and not has_gt[i]]
        if bad:
            raise ValueError(f'MeshMetric: {self.gt_key} of a valid frame is not finite (batch '
                             f'position {bad[0]}); mark frames without ground truth '
                             'valid=False in the dataset.')
        frame_mpjpe = np.full(len(gt), np.nan)
        frame_pa = np.full(len(gt), np.nan)
        if has_gt.any():
            frame_mpjpe[has_gt] = mpjpe(pred[has_gt], gt[has_gt], root=self.root_ids)
            frame_pa[has_gt] = pa_mpjpe(pred[has_gt], gt[has_gt])
        for i, sample in enumerate(data_samples):
            pred_verts = _lookup(sample, 'pred_vertices', required=False)
            gt_verts = _lookup(sample, 'gt_vertices', required=False)
            frame_mpvpe = np.nan
            if pred_verts is not None and gt_verts is not None:
                frame_mpvpe = float(
                    mpvpe(_to_numpy(pred_verts)[None], _to_numpy(gt_verts)[None])[0])
            self.results.append(
                dict(
                    sequence_id=_to_numpy(_lookup(sample, 'sequence_id')).item(),
                    frame_index=int(_to_numpy(_lookup(sample, 'frame_index')).item()),
                    valid=valid_flags[i],
                    pred_joints=pred[i],
                    gt_joints=gt[i],
                    mpjpe=float(frame_mpjpe[i]),
                    pa_mpjpe=float(frame_pa[i]),
                    mpvpe=frame_mpvpe))

    def _group(self, results: List[dict]) -> Dict[Any, List[dict]]:
        """Results by sequence, each sorted by frame index, sequences in a fixed order."""
        groups = defaultdict(list)
        for res in results:
            groups[res['sequence_id']].append(res)
        ordered = {}
        for seq in sorted(groups, key=lambda s: (type(s).__name__, str(s))):
            frames = sorted(groups[seq], key=lambda r: r['frame_index'])
            indices = np.array([r['frame_index'] for r in frames])
            if (np.diff(indices) == 0).any():
                dup = indices[:-1][np.diff(indices) == 0][0]
                raise ValueError(f'MeshMetric: frame {dup} of sequence {seq!r} was evaluated '
                                 'twice; sequence_id must identify one person track and '
                                 'frame_index one frame of it.')
            ordered[seq] = frames
        return ordered

    def _sequence_accel(self, frames: List[dict]) -> np.ndarray:
        """(T,) acceleration error of one sorted sequence, NaN where undefined."""
        out = np.full(len(frames), np.nan)
        valid = np.array([r['valid'] for r in frames])
        index = np.array([r['frame_index'] for r in frames])
        pred = np.stack([r['pred_joints'] for r in frames])
        gt = np.stack([r['gt_joints'] for r in frames])
        if self.accel_mode == 'filter_first':
            positions = np.flatnonzero(valid)
            keep = np.ones(max(len(positions) - 2, 0), bool)
        elif self.accel_mode == 'valid_centre':
            positions = np.arange(len(frames))
            has_gt = np.isfinite(gt).all(axis=(1, 2))
            keep = valid[1:-1] & has_gt[:-2] & has_gt[1:-1] & has_gt[2:]
        else:
            positions = np.arange(len(frames))
            keep = accel_keep_mask(len(frames), valid, index)
        errors = accel_error(pred[positions], gt[positions], root=self.root_ids)
        out[positions[1:-1][keep]] = errors[keep]
        return out

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Average the per-frame errors over the valid frames (mm)."""
        groups = self._group(results)
        frames = [r for seq_frames in groups.values() for r in seq_frames]
        valid = np.array([r['valid'] for r in frames], bool)
        if not valid.any():
            raise ValueError(f'MeshMetric: none of the {len(frames)} evaluated frames is '
                             'valid; check the dataset\'s valid flags.')
        per_frame = {
            key: np.array([r[key] for r in frames], np.float64)
            for key in ('mpjpe', 'pa_mpjpe', 'mpvpe')
        }
        per_frame['accel'] = np.concatenate(
            [self._sequence_accel(seq_frames) for seq_frames in groups.values()])

        metrics = {
            'MPJPE': float(per_frame['mpjpe'][valid].mean()),
            'PA-MPJPE': float(per_frame['pa_mpjpe'][valid].mean()),
        }
        has_verts = valid & np.isfinite(per_frame['mpvpe'])
        if has_verts.any():
            if has_verts.sum() < valid.sum():
                print_log(f'MeshMetric: MPVPE over {has_verts.sum()} of {valid.sum()} valid '
                          'frames; the others lack pred_vertices or gt_vertices.',
                          logger='current', level=logging.WARNING)
            metrics['MPVPE'] = float(per_frame['mpvpe'][has_verts].mean())
        has_accel = np.isfinite(per_frame['accel'])
        if has_accel.any():
            metrics['Accel'] = float(per_frame['accel'][has_accel].mean())
        else:
            print_log('MeshMetric: no frame has a valid previous and next frame in its '
                      'sequence, so no Accel is reported.',
                      logger='current', level=logging.WARNING)

        if self.dump_path is not None:
            self._dump(frames, valid, per_frame)
        return metrics

    def _dump(self, frames: List[dict], valid: np.ndarray, per_frame: dict) -> None:
        mkdir_or_exist(osp.dirname(osp.abspath(self.dump_path)))
        np.savez(
            self.dump_path,
            sequence_id=np.array([str(r['sequence_id']) for r in frames]),
            frame_index=np.array([r['frame_index'] for r in frames], np.int64),
            valid=valid,
            pred_joints=np.stack([r['pred_joints'] for r in frames]),
            gt_joints=np.stack([r['gt_joints'] for r in frames]),
            **per_frame)
        print_log(f'MeshMetric: per-frame results written to {self.dump_path}',
                  logger='current')
