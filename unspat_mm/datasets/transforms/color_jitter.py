"""Colour jitter with one set of factors for all frames of a window."""
from numbers import Number
from typing import Tuple, Union

import cv2
import numpy as np
from einops import rearrange
from mmcv.transforms import BaseTransform

from unspat_mm.registry import TRANSFORMS

from .frames import check_video_frames

__all__ = ['VideoColorJitter']

_GRAY = np.array([.299, .587, .114], np.float32)  # ITU-R 601 luma, as torchvision's
Range = Union[float, Tuple[float, float]]


def _factor_range(value: Range, name: str, centre: float, bound: Tuple[float, float]):
    """torchvision's convention: a number v means [centre - v, centre + v] (clipped at the
    lower bound); a pair is the range itself. None when the op is the identity."""
    if isinstance(value, Number):
        if value < 0:
            raise ValueError(f'VideoColorJitter: {name} must be >= 0, got {value}')
        lo, hi = max(centre - value, bound[0]), centre + value
    else:
        lo, hi = (float(v) for v in value)
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f'VideoColorJitter: {name} range must satisfy {bound[0]} <= lo <= hi '
                         f'<= {bound[1]}, got {(lo, hi)}')
    return None if lo == hi == centre else (lo, hi)


@TRANSFORMS.register_module()
class VideoColorJitter(BaseTransform):
    """Random brightness, contrast, saturation and hue, in a random order, with the same
    factors and order for all T frames of a window (drawn once from ``results['rng']``), so
    a clip does not flicker. Factors follow torchvision's ``ColorJitter``: brightness
    multiplies; contrast blends with the mean grey of the window (not of each frame, again
    to keep frames consistent); saturation blends with each pixel's grey; hue turns the hue
    by a fraction of a full turn. Works in float, clips to [0, 255] after each step and
    rounds once at the end.

    Reads and writes ``imgs`` (T, H, W, 3) uint8 RGB. All factors zero: the identity, and
    no draw from the rng.

    Args:
        brightness (float | tuple): factor uniform in ``[max(0, 1 - b), 1 + b]`` (or the
            given range). Defaults to 0.0.
        contrast (float | tuple): idem. Defaults to 0.0.
        saturation (float | tuple): idem. Defaults to 0.0.
        hue (float | tuple): shift uniform in ``[-h, h]`` turns, ``0 <= h <= 0.5`` (or the
            given range within [-0.5, 0.5]). Defaults to 0.0.
        prob (float): probability of jittering a window. Defaults to 1.0.
    """

    def __init__(self, brightness: Range = 0., contrast: Range = 0., saturation: Range = 0.,
                 hue: Range = 0., prob: float = 1.):
        if not 0 <= prob <= 1:
            raise ValueError(f'VideoColorJitter: prob must be in [0, 1], got {prob}')
        inf = float('inf')
        self.ranges = dict(brightness=_factor_range(brightness, 'brightness', 1., (0., inf)),
                           contrast=_factor_range(contrast, 'contrast', 1., (0., inf)),
                           saturation=_factor_range(saturation, 'saturation', 1., (0., inf)),
                           hue=_factor_range(hue, 'hue', 0., (-.5, .5)))
        self.prob = float(prob)

    def transform(self, results: dict) -> dict:
        imgs = check_video_frames(results.get('imgs'), 'VideoColorJitter')
        active = [name for name, rng_ in self.ranges.items() if rng_ is not None]
        if not active or self.prob == 0:
            return results
        rng = results.get('rng')
        if not isinstance(rng, np.random.Generator):
            raise KeyError('VideoColorJitter needs results["rng"] (a np.random.Generator; '
                           'BaseVideoDataset provides it)')
        if rng.uniform() >= self.prob:
            return results
        order = [active[i] for i in rng.permutation(len(active))]
        factors = {name: rng.uniform(*self.ranges[name]) for name in order}
        out = imgs.astype(np.float32)
        for name in order:
            out = np.clip(getattr(self, f'_{name}')(out, factors[name]), 0, 255)
        results['imgs'] = np.round(out).astype(np.uint8)
        results['color_jitter_factors'] = factors
        return results

    @staticmethod
    def _brightness(x: np.ndarray, f: float) -> np.ndarray:
        return x * np.float32(f)

    @staticmethod
    def _contrast(x: np.ndarray, f: float) -> np.ndarray:
        mean = (x @ _GRAY).mean(dtype=np.float64)
        return x * np.float32(f) + np.float32((1 - f) * mean)

    @staticmethod
    def _saturation(x: np.ndarray, f: float) -> np.ndarray:
        return x * np.float32(f) + (x @ _GRAY)[..., None] * np.float32(1 - f)

    @staticmethod
    def _hue(x: np.ndarray, shift: float) -> np.ndarray:
        num = len(x)
        hsv = cv2.cvtColor(rearrange(x / 255., 't h w c -> (t h) w c'), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + 360. * shift) % 360.  # OpenCV's float hue is degrees
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.
        return rearrange(rgb, '(t h) w c -> t h w c', t=num)

    def __repr__(self):
        args = ', '.join(f'{name}={value}' for name, value in self.ranges.items())
        return f'{type(self).__name__}({args}, prob={self.prob})'
