"""Load the cached backbone features of a video window (instead of its frames)."""
import numpy as np
from mmcv.transforms import BaseTransform

from unspat_mm.registry import TRANSFORMS
from .bbox_crop import bbox_crop_affine, crop_keypoints2d

__all__ = ['LoadVideoFeatures']


@TRANSFORMS.register_module()
class LoadVideoFeatures(BaseTransform):
    """Read the T cached feature maps of a window; replaces ``LoadVideoFrames`` +
    ``VideoBBoxCrop`` when a dataset has ``feature_cfg`` (see
    :mod:`unspat_mm.datasets.feature_store`).

    Reads ``results['features']`` (the dataset's :class:`FeatureStore`, then dropped from
    ``results``) at ``results['frame_rows']`` into ``results['feats']``, (T, C, h, w) as
    stored (float16). The labels get the geometry of the crop the features were made from
    (the store's ``crop``: the test pipeline's ``VideoBBoxCrop``, no jitter), as that
    transform would give it: ``keypoints2d`` (T, K, 2) in crop pixels with
    ``keypoints2d_valid`` zeroed outside the crop, ``crop_affine`` (T, 2, 3),
    ``crop_bbox`` (T, 4), ``input_size`` ``(w, h)`` and ``img_shape`` ``(h, w)`` of the crop.

    No image augmentation exists in this mode (the frames were seen once, unaugmented);
    the neck's feature artifacts still apply in training.
    """

    def transform(self, results: dict) -> dict:
        store = results.pop('features', None)
        results.pop('images', None)
        if store is None:
            raise KeyError('LoadVideoFeatures: results carry no feature store; give the '
                           'dataset feature_cfg=dict(root=..., checkpoint=...) (see '
                           'docs/cached_features.md)')
        rows = np.asarray(results['frame_rows'])
        results['feats'] = store.read(rows)
        crop = store.crop
        input_size = tuple(int(v) for v in crop['input_size'])
        padding = float(crop['padding'])
        boxes = np.asarray(results[crop['bbox_key']], np.float64)
        if boxes.shape != (len(rows), 4):
            raise ValueError(f'LoadVideoFeatures: {crop["bbox_key"]} must be (T, 4) = '
                             f'({len(rows)}, 4), got {boxes.shape}')
        boxes = boxes * np.array([1., 1., padding, padding])
        affines = np.stack([bbox_crop_affine(b, input_size) for b in boxes])
        crop_keypoints2d(results, affines, input_size)
        results['crop_affine'] = affines.astype(np.float32)
        results['crop_bbox'] = boxes.astype(np.float32)
        results['input_size'] = input_size
        results['img_shape'] = input_size[::-1]
        return results
