from .base_video_dataset import BaseVideoDataset, window_rows
from .samplers import DrawIdSampler
from .synthetic_dataset import SyntheticVideoDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['BaseVideoDataset', 'SyntheticVideoDataset', 'DrawIdSampler', 'window_rows']
