"""Inference on users' videos: detection, tracking, streaming windows, result files
(see docs/inference.md)."""
from .crops import CropMaker, crop_to_image, project_to_image
from .detectors import (HOGPersonDetector, JsonBoxes, MMDetPersonDetector, WholeImageDetector,
                        build_detector)
from .frame_source import FrameSource
from .inferencer import UNSPATInferencer
from .middle_frame_neck import encode_middle_frame
from .model_loading import (InferenceSettings, checkpoint_summary, inference_settings,
                            init_unspat_model, make_standin_body_model)
from .outputs import ResultWriter
from .streaming import TorchBackend, TrackWindowBuffer
from .tracking import Track, build_tracks, run_byte_tracker, smooth_boxes

__all__ = [
    'UNSPATInferencer', 'init_unspat_model', 'inference_settings', 'InferenceSettings',
    'checkpoint_summary', 'make_standin_body_model', 'FrameSource', 'build_detector',
    'HOGPersonDetector', 'WholeImageDetector', 'JsonBoxes', 'MMDetPersonDetector', 'Track',
    'build_tracks', 'run_byte_tracker', 'smooth_boxes', 'TrackWindowBuffer', 'TorchBackend',
    'encode_middle_frame', 'CropMaker', 'crop_to_image', 'project_to_image', 'ResultWriter'
]
