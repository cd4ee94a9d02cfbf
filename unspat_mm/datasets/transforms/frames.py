"""The frame-array check the video transforms share."""
import numpy as np

__all__ = ['check_video_frames']


def check_video_frames(imgs, owner: str) -> np.ndarray:
    """Return ``imgs`` if it is a (T, H, W, 3) uint8 RGB array, else raise naming ``owner``."""
    if not isinstance(imgs, np.ndarray) or imgs.ndim != 4 or imgs.shape[-1] != 3 or \
            imgs.dtype != np.uint8:
        raise ValueError(f'{owner}: results["imgs"] must be (T, H, W, 3) uint8 RGB frames, '
                         f'got {getattr(imgs, "shape", type(imgs))} {getattr(imgs, "dtype", "")}')
    return imgs
