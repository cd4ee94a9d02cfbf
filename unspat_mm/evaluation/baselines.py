"""Reference numbers that any trained model must beat."""
from typing import Dict

import numpy as np

from unspat_mm.structures.skeleton import J14_HIP_IDS

from .functional import accel_error, mpjpe, pa_mpjpe


def _joints14(dataset) -> np.ndarray:
    ann = dataset.ann if dataset.ann else (dataset.full_init() or dataset.ann)
    if 'gt_joints14' not in ann:
        raise KeyError(f'{type(dataset).__name__} has no per-frame gt_joints14 annotations, '
                       'which the mean-pose baseline needs.')
    return np.asarray(ann['gt_joints14'], np.float64)


def mean_pose_baseline(train_dataset, test_dataset) -> Dict[str, float]:
    """MPJPE, PA-MPJPE and Accel (mm) of predicting, for every test frame, the
    mean hip-centred 14-joint pose of the training frames; the test protocol is
    MeshMetric's (valid frames, hip-midpoint root, accel per sequence)."""
    mean_pose = _joints14(train_dataset).mean(axis=0)
    gt = _joints14(test_dataset)
    ann = test_dataset.ann
    valid = np.asarray(ann['valid'], bool)
    pred = np.broadcast_to(mean_pose, gt.shape)
    accel = []
    for seq in np.unique(ann['sequence_id']):
        rows = np.flatnonzero(ann['sequence_id'] == seq)
        rows = rows[np.argsort(ann['frame_index'][rows])]
        accel.append(accel_error(pred[rows], gt[rows], valid=valid[rows],
                                 frame_index=ann['frame_index'][rows], root=list(J14_HIP_IDS)))
    return {'MPJPE': float(mpjpe(pred[valid], gt[valid], root=list(J14_HIP_IDS)).mean()),
            'PA-MPJPE': float(pa_mpjpe(pred[valid], gt[valid]).mean()),
            'Accel': float(np.concatenate(accel).mean())}
