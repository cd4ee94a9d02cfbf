from .background import RandomSyntheticBackground
from .bbox_crop import VideoBBoxCrop, apply_affine, bbox_crop_affine, to_cv2_affine
from .formatting import PackVideoMeshInputs
from .loading import LoadVideoFrames

__all__ = ['LoadVideoFrames', 'RandomSyntheticBackground', 'VideoBBoxCrop',
           'PackVideoMeshInputs', 'bbox_crop_affine', 'to_cv2_affine', 'apply_affine']
