from .laplacian_keypoint_loss import LaplacianKeypointLoss
from .rotation_6d_loss import Rotation6DLoss
from .smpl_param_losses import BetaLoss, ThetaLoss, TwistLoss, to_rotation_matrices

__all__ = ['LaplacianKeypointLoss', 'BetaLoss', 'ThetaLoss', 'TwistLoss', 'Rotation6DLoss',
           'to_rotation_matrices']
