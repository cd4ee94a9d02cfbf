"""Registries of unspat-mm, children of mmpose's (scope ``unspat_mm``).

Every component is registered here so that configs can name it, either with
``default_scope='unspat_mm'`` or from any mmpose config through
``custom_imports=dict(imports=['unspat_mm'])`` and the ``unspat_mm.`` prefix.
Names not found here fall back to mmpose (and from there to mmengine), so
``dict(type='ResNet', depth=34)`` builds mmpose's ResNet.
"""
from mmengine.registry import Registry
from mmpose.registry import DATA_SAMPLERS as MMPOSE_DATA_SAMPLERS
from mmpose.registry import DATASETS as MMPOSE_DATASETS
from mmpose.registry import HOOKS as MMPOSE_HOOKS
from mmpose.registry import METRICS as MMPOSE_METRICS
from mmpose.registry import MODELS as MMPOSE_MODELS
from mmpose.registry import TRANSFORMS as MMPOSE_TRANSFORMS

MODELS = Registry('model', parent=MMPOSE_MODELS, scope='unspat_mm',
                  locations=['unspat_mm.models'])
DATASETS = Registry('dataset', parent=MMPOSE_DATASETS, scope='unspat_mm',
                    locations=['unspat_mm.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=MMPOSE_DATA_SAMPLERS,
                         scope='unspat_mm', locations=['unspat_mm.datasets'])
TRANSFORMS = Registry('transform', parent=MMPOSE_TRANSFORMS, scope='unspat_mm',
                      locations=['unspat_mm.datasets.transforms'])
METRICS = Registry('metric', parent=MMPOSE_METRICS, scope='unspat_mm',
                   locations=['unspat_mm.evaluation'])
HOOKS = Registry('hook', parent=MMPOSE_HOOKS, scope='unspat_mm',
                 locations=['unspat_mm.engine'])
