"""Stack and normalise T-frame clips (or pre-extracted feature clips)."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from unspat_mm.registry import MODELS


@MODELS.register_module()
class VideoDataPreprocessor(BaseDataPreprocessor):
    """Batch clips for :class:`~unspat_mm.models.UNSPAT`.

    ``data['inputs']`` is a list of B clips, each (T, 3, H, W) pixel values in
    [0, 255] (RGB unless ``bgr_to_rgb``), or, with ``features=True``, each
    (T, C, h, w) pre-extracted backbone maps (the paper's Table 1 protocol).
    The output ``inputs`` is (B, T, 3, H, W) normalised by ``mean``/``std`` (or
    the stacked features, untouched); data samples are moved to the device.
    """

    def __init__(self, mean: Optional[Sequence[float]] = (123.675, 116.28, 103.53),
                 std: Optional[Sequence[float]] = (58.395, 57.12, 57.375),
                 bgr_to_rgb: bool = False, features: bool = False):
        super().__init__()
        self.features = features
        self.bgr_to_rgb = bgr_to_rgb
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(3, 1, 1),
                             persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        clips = data['inputs']
        if isinstance(clips, (list, tuple)):
            shapes = {tuple(c.shape) for c in clips}
            if len(shapes) != 1:
                raise ValueError('all clips of a batch must share one shape (T, C, H, W); got '
                                 f'{sorted(shapes)}. Resize crops to one input size.')
            clips = torch.stack(list(clips))
        if clips.dim() != 5:
            raise ValueError('VideoDataPreprocessor expects clips of shape (T, C, H, W), got a '
                             f'batch of shape {tuple(clips.shape)}.')
        clips = clips.float()
        if not self.features:
            if clips.shape[2] != 3:
                raise ValueError(f'image clips need 3 channels, got {clips.shape[2]}; for '
                                 'pre-extracted features set features=True.')
            if self.bgr_to_rgb:
                clips = clips.flip(2)
            clips = (clips - self.mean) / self.std
        return dict(inputs=clips, data_samples=data.get('data_samples'))
