from .functional import (accel_error, accel_keep_mask, mpjpe, mpvpe, pa_mpjpe, procrustes_align,
                         root_align)
from .baselines import mean_pose_baseline
from .metrics import MeshMetric, RootOrientationMetric

__all__ = [
    'mpjpe', 'pa_mpjpe', 'mpvpe', 'accel_error', 'accel_keep_mask', 'procrustes_align',
    'root_align', 'MeshMetric', 'RootOrientationMetric', 'mean_pose_baseline'
]
