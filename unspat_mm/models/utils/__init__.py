from .root_rotation import procrustes_rotation, root_point_weights, root_rotation
from .rotations import (any_perpendicular, axis_angle_to_matrix, geodesic_distance,
                        matrix_to_axis_angle, matrix_to_rotation_6d, rotation_6d_to_matrix,
                        rotation_about_axis, safe_norm, safe_normalize, skew)
from .twist_swing_ik import (forward_kinematics, swing_rotation, twist_angles_from_pose,
                             twist_swing_ik)

__all__ = [
    'axis_angle_to_matrix', 'matrix_to_axis_angle', 'geodesic_distance', 'rotation_about_axis',
    'rotation_6d_to_matrix', 'matrix_to_rotation_6d', 'skew', 'safe_norm', 'safe_normalize',
    'any_perpendicular',
    'forward_kinematics', 'twist_swing_ik', 'twist_angles_from_pose', 'swing_rotation',
    'procrustes_rotation', 'root_point_weights', 'root_rotation'
]
