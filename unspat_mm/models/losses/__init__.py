from .laplacian_keypoint_loss import LaplacianKeypointLoss
from .smpl_param_losses import BetaLoss, ThetaLoss, TwistLoss, to_rotation_matrices

__all__ = ['LaplacianKeypointLoss', 'BetaLoss', 'ThetaLoss', 'TwistLoss', 'to_rotation_matrices']
