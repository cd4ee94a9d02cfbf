from .ik_mesh_head import IKMeshHead
from .projection import semi_perspective_projection
from .soft_argmax import soft_argmax_3d

__all__ = ['IKMeshHead', 'semi_perspective_projection', 'soft_argmax_3d']
