from .mesh_errors import (accel_error, accel_keep_mask, mpjpe, mpvpe, pa_mpjpe, procrustes_align,
                          root_align)

__all__ = [
    'mpjpe', 'pa_mpjpe', 'mpvpe', 'accel_error', 'accel_keep_mask', 'procrustes_align', 'root_align'
]
