"""The embedded synthetic benchmark: procedural (or DeepMimic) motion of SMPL or the
stand-in mannequin, shaded body parts over clutter, tracker-like box jitter, occluders."""
from .body_model import (body_model_fingerprint, ensure_standin_body_model, load_body_model,
                         prepare_body_model_dir, prepare_config_body_model)
from .cache import (DEFAULT_SETTINGS, PRESETS, ensure_synthetic_dataset, load_split,
                    mean_pose_mpjpe, merge_settings, open_split_images)
from .deepmimic import deepmimic_to_smpl, find_deepmimic_clips, load_deepmimic_clip
from .generate import SequenceRenderer

__all__ = [
    'DEFAULT_SETTINGS', 'PRESETS', 'ensure_synthetic_dataset', 'load_split', 'open_split_images',
    'merge_settings',
    'mean_pose_mpjpe', 'prepare_body_model_dir', 'ensure_standin_body_model',
    'prepare_config_body_model', 'load_body_model', 'body_model_fingerprint',
    'SequenceRenderer', 'find_deepmimic_clips', 'load_deepmimic_clip', 'deepmimic_to_smpl'
]
