"""Load the frames of a video window."""
from typing import Optional

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from unspat_mm.registry import TRANSFORMS

__all__ = ['LoadVideoFrames']


@TRANSFORMS.register_module()
class LoadVideoFrames(BaseTransform):
    """Read the T frames of a window into ``results['imgs']``, (T, H, W, 3) uint8 RGB.

    Reads rows ``results['img_index']`` of the in-memory (or memory-mapped) array
    ``results['images']`` (which is then dropped from ``results``), or the files
    ``results['img_path']`` (with OpenCV, converted from BGR to RGB; a file repeated at a
    sequence end is read once). Adds ``img_shape`` and ``ori_shape`` ``(H, W)``.

    Args:
        backend_args (dict, optional): unused; accepted for config compatibility.
            Defaults to None.
    """

    def __init__(self, backend_args: Optional[dict] = None):
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        images = results.pop('images', None)
        if 'img_index' in results:
            if images is None:
                raise KeyError('LoadVideoFrames: img_index given but no images array')
            imgs = np.asarray(images[np.asarray(results['img_index'])])
        elif 'img_path' in results:
            cache = {}
            for path in results['img_path']:
                if path not in cache:
                    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
                    if img is None:
                        raise FileNotFoundError(f'LoadVideoFrames: cannot read image {path}')
                    cache[path] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            shapes = {img.shape for img in cache.values()}
            if len(shapes) != 1:
                raise ValueError(f'LoadVideoFrames: frames of one window differ in size: '
                                 f'{sorted(shapes)}')
            imgs = np.stack([cache[p] for p in results['img_path']])
        else:
            raise KeyError('LoadVideoFrames needs img_index (+ images) or img_path in results')
        if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
            raise ValueError(f'LoadVideoFrames: expected (T, H, W, 3) uint8 frames, got '
                             f'{imgs.shape} {imgs.dtype}')
        results['imgs'] = imgs
        results['img_shape'] = results['ori_shape'] = imgs.shape[1:3]
        return results
