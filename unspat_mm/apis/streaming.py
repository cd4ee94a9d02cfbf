"""Streaming windows: the backbone once per frame, neck + head once per output frame.

Every frame of a track is the middle of a window of T frames ``frame_interval`` apart,
clamped at the track's ends: :func:`unspat_mm.datasets.base_video_dataset.window_rows`,
the rule of the test datasets. A track's per-frame features wait in a ring buffer of
``(T - 1) * frame_interval + 1`` frames (bounded memory, whatever the video's length);
a frame's window is complete ``(T - 1 - T // 2) * frame_interval`` frames later (the
latency), or when the track ends.

Causal mode (live use): each frame is predicted as soon as it arrives, as if the track
ended there, so its window ends at the current frame (the positions after the middle
repeat it, as the test windows do at a sequence's last frame).
"""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from unspat_mm.datasets.base_video_dataset import window_rows

from .middle_frame_neck import encode_middle_frame

__all__ = ['TrackWindowBuffer', 'TorchBackend', 'OUTPUT_KEYS']

# per-window outputs of a backend's ``predict``
OUTPUT_KEYS = ('theta', 'betas', 'camera', 'keypoints3d', 'keypoints2d', 'joints24',
               'vertices', 'sigma', 'uncertainty')


class TrackWindowBuffer:
    """Ring buffer of one track's per-frame features, emitting complete windows.

    Args:
        start (int): the track's first frame index.
        num_frames (int): T.
        frame_interval (int): frames between window positions.
        causal (bool): emit each frame at once, its window ending at it.
    """

    def __init__(self, start: int, num_frames: int, frame_interval: int = 1,
                 causal: bool = False):
        self.start, self.num_frames, self.interval = int(start), int(num_frames), int(
            frame_interval)
        self.causal = causal
        half = self.num_frames // 2
        self.lookahead = 0 if causal else (self.num_frames - 1 - half) * self.interval
        # oldest frame a pending window may still read: target - half * interval
        self.capacity = self.lookahead + half * self.interval + 1
        self.buffer: Optional[Tensor] = None
        self.newest = self.start - 1
        self.done = False

    def _window(self, target: int) -> Tuple[Tensor, np.ndarray]:
        rows = window_rows(target, self.start, self.newest + 1, self.num_frames, self.interval)
        index = torch.as_tensor(rows % self.capacity, device=self.buffer.device)
        return self.buffer.index_select(0, index), rows

    def push(self, frame_index: int, feature: Tensor) -> List[Tuple[int, Tensor, np.ndarray]]:
        """Add the next frame's (C, h, w) feature; returns the windows now complete as
        ``(target_frame, (T, C, h, w) features, (T,) frame indices)``."""
        if self.done:
            raise RuntimeError('push() after finish()')
        if frame_index != self.newest + 1:
            raise ValueError(f'frames must come in order: expected {self.newest + 1}, got '
                             f'{frame_index}')
        if self.buffer is None:
            self.buffer = feature.new_empty((self.capacity, ) + tuple(feature.shape))
        self.buffer[frame_index % self.capacity] = feature
        self.newest = frame_index
        target = frame_index - self.lookahead
        if target < self.start:
            return []
        return [(target, *self._window(target))]

    def finish(self) -> List[Tuple[int, Tensor, np.ndarray]]:
        """The track ended at the last pushed frame: its remaining windows."""
        self.done = True
        first = max(self.start, self.newest - self.lookahead + 1)
        return [(t, *self._window(t)) for t in range(first, self.newest + 1)]


def to_model_clip(crops: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 RGB crops -> (N, 3, H, W) uint8 tensor, as
    ``PackVideoMeshInputs`` packs a window."""
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).contiguous()


class TorchBackend:
    """The PyTorch model split for streaming.

    Args:
        model (UNSPAT): the estimator, in eval mode.
        middle_only (bool): evaluate the neck for the middle frame only
            (:func:`encode_middle_frame`, same results). Defaults to True.
    """

    def __init__(self, model, middle_only: bool = True):
        self.model = model.eval()
        self.middle_only = middle_only
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def features(self, crops: np.ndarray) -> Tensor:
        """(N, H, W, 3) uint8 RGB crops -> (N, C, h, w) backbone features (one frame
        each; normalised by the model's data preprocessor)."""
        batch = self.model.data_preprocessor(dict(inputs=[to_model_clip(crops)]))
        return self.model.extract_feat(batch['inputs'])[0]

    @torch.no_grad()
    def predict(self, windows: Tensor) -> Dict[str, np.ndarray]:
        """(B, T, C, h, w) feature windows -> the middle frames' outputs, numpy arrays
        keyed by :data:`OUTPUT_KEYS` (metres; ``uncertainty`` is (B, T, h, w))."""
        windows = windows.to(self.device)
        if self.middle_only:
            feats, uncertainty = encode_middle_frame(self.model.neck, windows)
        else:
            encoded = self.model.neck(windows)
            feats, uncertainty = encoded.feats, encoded.uncertainty
        out = self.model.head(feats)
        if uncertainty is None:
            uncertainty = feats.new_zeros(windows.shape[:2] + windows.shape[3:])
        out = dict(out, uncertainty=uncertainty)
        return {k: out[k].float().cpu().numpy() for k in OUTPUT_KEYS}
