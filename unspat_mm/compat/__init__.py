"""Compatibility shims for the pinned OpenMMLab stack (see each module)."""
from .mmcv_ops import HAS_COMPILED_MMCV, install_mmcv_ops_standin

__all__ = ['HAS_COMPILED_MMCV', 'install_mmcv_ops_standin']
