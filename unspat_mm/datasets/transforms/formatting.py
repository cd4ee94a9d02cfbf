"""Pack a cropped window into the model's inputs and the target frame's data sample."""
from typing import Sequence

import numpy as np
import torch
from einops import rearrange
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from unspat_mm.registry import TRANSFORMS

__all__ = ['PackVideoMeshInputs']

_DEFAULT_META = ('sequence_id', 'frame_index', 'valid', 'occluded', 'img_shape', 'ori_shape',
                 'input_size', 'sample_idx', 'draw_id', 'epoch', 'center_index',
                 'window_frame_indices', 'occluded_frames', 'crop_bbox', 'crop_affine',
                 'flipped')


def _float(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def _tensors_in_one_storage(arrays: dict) -> dict:
    """float32 tensors that are views of one storage. A data worker sends every storage
    to the training process through a shared-memory file of its own, and that per-storage
    cost adds up to a noticeable share of a small model's step."""
    flat = torch.from_numpy(np.concatenate([a.reshape(-1) for a in arrays.values()]))
    tensors, start = {}, 0
    for key, array in arrays.items():
        tensors[key] = flat[start:start + array.size].view(array.shape)
        start += array.size
    return tensors


@TRANSFORMS.register_module()
class PackVideoMeshInputs(BaseTransform):
    """``dict(inputs, data_samples)`` for :class:`~unspat_mm.models.UNSPAT`.

    ``inputs``: (T, 3, H, W) uint8 tensor, RGB 0..255 (the data preprocessor normalises),
    or, when ``results`` has ``feats`` (:class:`LoadVideoFeatures`), the (T, C, h, w)
    cached feature maps as stored (float16; ``VideoDataPreprocessor(features=True)``).
    ``data_samples``: a ``BaseDataElement`` with the target (middle) frame's ground truth:

    - ``keypoints3d`` (29, 3) float32: root-relative (pelvis = joint 0) metres, camera
      axes; ``keypoints3d_valid`` (29,);
    - ``keypoints2d`` (29, 2): crop coordinates normalised to the crop,
      ``px / input_size - 0.5`` (the crop spans [-0.5, 0.5]); ``keypoints2d_valid`` (29,);
    - ``theta`` (72,) camera-frame axis-angle, ``betas`` (10,), ``smpl_valid`` (scalar,
      0. or 1.);
    - ``gt_joints14`` (14, 3) hip-centred metres, when the dataset has it without SMPL;
    - ``gt_joints17`` (17, 3) pelvis-centred metres (Human3.6M order), when present;

    and metainfo ``meta_keys`` present in ``results`` (sequence_id, frame_index, valid,
    occluded, img_shape, ``flipped``, ...; per-window arrays such as ``crop_bbox`` at the
    middle frame).

    Args:
        meta_keys (Sequence[str]): result keys copied to the metainfo.
            Defaults to ``_DEFAULT_META`` (the keys listed above, and more).
    """

    def __init__(self, meta_keys: Sequence[str] = _DEFAULT_META):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'input_size' not in results:
            raise KeyError('PackVideoMeshInputs: crop the frames first (VideoBBoxCrop, or '
                           'LoadVideoFeatures), the normalised 2D keypoints are relative to '
                           'the crop')
        c = results['center_index']
        size = np.asarray(results['input_size'], dtype=np.float32)  # (w, h)
        if 'feats' in results:
            inputs = torch.from_numpy(np.ascontiguousarray(results['feats']))
        else:
            inputs = rearrange(torch.from_numpy(np.ascontiguousarray(results['imgs'])),
                               't h w c -> t c h w')
        fields = dict(
            keypoints3d=_float(results['keypoints3d'][c]),
            keypoints3d_valid=_float(results['keypoints3d_valid'][c]),
            keypoints2d=_float(np.asarray(results['keypoints2d'][c]) / size - .5),
            keypoints2d_valid=_float(results['keypoints2d_valid'][c]),
            theta=_float(results['theta'][c]),
            betas=_float(results['betas'][c]),
            smpl_valid=_float(float(np.asarray(results['smpl_valid'][c]) > 0)))
        for key in ('gt_joints14', 'gt_joints17'):
            if key in results:
                fields[key] = _float(results[key][c])
        metainfo = {}
        for key in self.meta_keys:
            if key in results:
                value = results[key]
                if key in ('crop_bbox', 'crop_affine'):
                    value = np.asarray(value)[c]
                metainfo[key] = value
        sample = BaseDataElement(metainfo=metainfo)
        sample.set_data(_tensors_in_one_storage(fields))
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self):
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
