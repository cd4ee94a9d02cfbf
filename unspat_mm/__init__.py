"""unspat-mm: UNSPAT video human mesh recovery as an OpenMMLab (mmpose) plugin.

Importing the package makes mmpose/mmdet importable under mmcv-lite (see
:mod:`unspat_mm.compat.mmcv_ops`) and registers every component under the
``unspat_mm`` scope, so ``custom_imports=dict(imports=['unspat_mm'])`` is all a
config needs.
"""
from .compat import install_mmcv_ops_standin
from .version import __version__

install_mmcv_ops_standin()

from . import datasets, engine, evaluation, models  # noqa: E402,F401

__all__ = ['__version__']
