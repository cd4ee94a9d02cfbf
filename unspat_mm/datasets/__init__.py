from .annotation_format import (VIDEO_ANNOTATION_FORMAT, load_video_annotations,
                                save_video_annotations, validate_video_annotations)
from .base_video_dataset import BaseVideoDataset, window_rows
from .feature_store import (FEATURE_FORMAT, FeatureStore, backbone_fingerprint,
                            checkpoint_backbone_fingerprint)
from .mixed_dataset import MixedVideoDataset
from .real_datasets import (H36MDataset, InstaVarietyDataset, MPIINF3DHPDataset,
                            PennActionDataset, PoseTrackDataset, PW3DDataset)
from .samplers import DrawIdSampler
from .synthetic_dataset import SyntheticVideoDataset
from .transforms import *  # noqa: F401,F403
from .video_annotation_dataset import VideoAnnotationDataset

__all__ = ['BaseVideoDataset', 'SyntheticVideoDataset', 'DrawIdSampler', 'window_rows',
           'VIDEO_ANNOTATION_FORMAT', 'save_video_annotations', 'load_video_annotations',
           'validate_video_annotations', 'VideoAnnotationDataset', 'PW3DDataset',
           'H36MDataset', 'MPIINF3DHPDataset', 'PennActionDataset', 'PoseTrackDataset',
           'InstaVarietyDataset', 'MixedVideoDataset', 'FEATURE_FORMAT', 'FeatureStore',
           'backbone_fingerprint', 'checkpoint_backbone_fingerprint']
