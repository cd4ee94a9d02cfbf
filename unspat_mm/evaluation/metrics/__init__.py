from .mesh_metric import MeshMetric
from .root_orientation_metric import RootOrientationMetric

__all__ = ['MeshMetric', 'RootOrientationMetric']
