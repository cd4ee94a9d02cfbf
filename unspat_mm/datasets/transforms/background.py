"""Fresh backgrounds for synthetic clips, so that a model cannot memorise scenes."""
import numpy as np
from mmcv.transforms import BaseTransform

from unspat_mm.registry import TRANSFORMS

from .procedural import make_background

__all__ = ['RandomSyntheticBackground']


@TRANSFORMS.register_module()
class RandomSyntheticBackground(BaseTransform):
    """With probability ``prob``, replace the background of a synthetic clip (every pixel
    outside ``person_mask`` and ``occluder_mask``) by a new procedural clutter background,
    drawn from ``results['rng']`` and shared by the T frames (a static camera).

    The synthetic set has few scenes (240 training sequences); their backgrounds
    identify them, which lets a model memorise poses per scene instead of reading the body.
    Needs ``SyntheticVideoDataset(with_masks=True)``; place it after
    :class:`LoadVideoFrames` and before the crop (the masks are full-frame).

    Args:
        prob (float): probability of replacing the background of a clip. Defaults to 0.5.
        noise_std (float): std of the pixel noise added to the new background (the stored
            frames carry the same sensor noise). Defaults to 2.0.
    """

    def __init__(self, prob: float = .5, noise_std: float = 2.):
        self.prob, self.noise_std = prob, noise_std

    def transform(self, results: dict) -> dict:
        missing = [k for k in ('person_mask', 'occluder_mask', 'rng') if k not in results]
        if missing:
            raise KeyError(f'RandomSyntheticBackground needs {missing} in results: build the '
                           'dataset with with_masks=True (rng comes from BaseVideoDataset)')
        rng = results['rng']
        if rng.uniform() >= self.prob:
            return results
        imgs = results['imgs']
        background = make_background(rng, imgs.shape[1:3])
        # in place: this runs once per training sample
        new = rng.standard_normal(imgs.shape, dtype=np.float32)
        new *= self.noise_std
        new += background
        np.clip(new, 0, 255, out=new)
        new = np.rint(new, out=new).astype(np.uint8)
        keep = results['person_mask'] | results['occluder_mask']
        np.copyto(new, imgs, where=keep[..., None])
        results['imgs'] = new
        return results

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob}, noise_std={self.noise_std})'
