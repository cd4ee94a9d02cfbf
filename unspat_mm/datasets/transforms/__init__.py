from .background import RandomSyntheticBackground
from .bbox_crop import VideoBBoxCrop, apply_affine, bbox_crop_affine, to_cv2_affine
from .color_jitter import VideoColorJitter
from .flip import RandomVideoFlip, flip_joints, flip_permutation, flip_smpl_pose, flip_twist
from .formatting import PackVideoMeshInputs
from .load_features import LoadVideoFeatures
from .loading import LoadVideoFrames
from .occlusion import RandomVideoOccluders, load_occluder_bank, save_occluder_bank

__all__ = ['LoadVideoFrames', 'LoadVideoFeatures', 'RandomSyntheticBackground', 'VideoBBoxCrop',
           'PackVideoMeshInputs', 'bbox_crop_affine', 'to_cv2_affine', 'apply_affine',
           'RandomVideoFlip', 'flip_permutation', 'flip_joints', 'flip_smpl_pose', 'flip_twist',
           'RandomVideoOccluders', 'load_occluder_bank', 'save_occluder_bank',
           'VideoColorJitter']
