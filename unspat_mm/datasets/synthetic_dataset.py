"""The embedded synthetic, occluded video benchmark as a dataset."""
import logging
from typing import Optional

import numpy as np
from mmengine.logging import print_log

from unspat_mm.registry import DATASETS
from unspat_mm.structures.skeleton import J14_HIP_IDS

from .base_video_dataset import BaseVideoDataset
from .synthetic.cache import (PRESETS, ensure_synthetic_dataset, load_split, merge_settings,
                              open_split_images)

__all__ = ['SyntheticVideoDataset']


@DATASETS.register_module()
class SyntheticVideoDataset(BaseVideoDataset):
    """Shaded SMPL (or stand-in) bodies in procedural motion over clutter, with
    tracker-like box jitter and occluders; generated once on the CPU (the default set:
    5952 frames of 160x160) and cached, see :mod:`unspat_mm.datasets.synthetic`.

    Needs neither SMPL nor any download: without SMPL in ``body_model_dir`` the stand-in
    mannequin is generated in ``<cache_dir>/body_model_standin`` (a loud warning says so;
    point the model's ``SMPLBodyModel`` at the same folder, ``self.body_model_dir``).

    Per frame it provides ``bbox`` (jittered) and ``bbox_gt``, ``keypoints2d`` (29, 2)
    pixels, ``keypoints3d`` (29, 3) pelvis-relative metres (camera axes), ``theta`` (camera
    frame), ``betas``, ``gt_joints14`` (hip-centred metres), ``keypoints3d_cam`` (29, 3)
    camera-frame metres, ``occluded``, ``occlusion_ratio``, ``twist``, ``focal``,
    ``principal``, ``transl``, and with ``with_masks`` the ``occluder_mask`` and
    ``person_mask`` (H, W) bool (stored bit-packed, unpacked per window; needed by
    :class:`RandomSyntheticBackground`, recommended for training).

    Args:
        split (str): 'train', 'val' or 'test' (split by sequence). Defaults to 'train'.
        cache_dir (str): where generated sets are cached. Defaults to 'data/synthetic'.
        body_model_dir (str, optional): folder with ``SMPL_NEUTRAL.npz`` (or a stand-in).
            Defaults to None.
        settings (dict, optional): overrides of ``synthetic.DEFAULT_SETTINGS``.
            Defaults to None.
        preset (str): 'default' or 'tiny', the base the overrides apply to.
            Defaults to 'default'.
        with_masks (bool): also pass the per-frame masks to the pipeline.
            Defaults to False.
        test_mode (bool): evaluation: every frame is the target of exactly one window.
            Defaults to False.
        **kwargs (dict): :class:`BaseVideoDataset` arguments (``num_frames``, ``stride``,
            ``seed``, ``pipeline``, ``test_mode``, ...).
    """
    METAINFO = dict(dataset_name='unspat_synthetic')

    def __init__(self, split: str = 'train', cache_dir: str = 'data/synthetic',
                 body_model_dir: Optional[str] = None, settings: Optional[dict] = None,
                 preset: str = 'default', with_masks: bool = False, **kwargs):
        if preset not in PRESETS:
            raise KeyError(f'Unknown preset {preset!r}; choose from {sorted(PRESETS)}')
        self.split, self.cache_dir, self.with_masks = split, cache_dir, with_masks
        self.requested_body_model_dir = body_model_dir
        self.settings = merge_settings(settings, merge_settings(PRESETS[preset]))
        self.dataset_dir: Optional[str] = None
        self.synthetic_meta: dict = {}
        super().__init__(**kwargs)

    @property
    def body_model_dir(self) -> str:
        """The folder of the body model the ground truth was generated with."""
        return self.synthetic_meta['body_model']['dir']

    def load_annotations(self):
        self.dataset_dir = ensure_synthetic_dataset(self.settings, self.cache_dir,
                                                    self.requested_body_model_dir)
        raw, self.synthetic_meta = load_split(self.dataset_dir, self.split)
        self._metainfo.update(
            dataset_dir=self.dataset_dir, body_model_dir=self.body_model_dir,
            body_model_is_standin=self.synthetic_meta['body_model']['is_standin'],
            mean_pose_mpjpe_mm=self.synthetic_meta.get('mean_pose_mpjpe_mm'))
        num = len(raw['sequence_id'])
        joints29 = raw.pop('joints29')
        joints14 = raw.pop('joints14')
        ann = dict(
            img_index=np.arange(num),
            keypoints3d=joints29 - joints29[:, :1],
            keypoints3d_valid=np.ones(joints29.shape[:2], np.float32),
            keypoints2d_valid=np.ones(joints29.shape[:2], np.float32),
            smpl_valid=np.ones(num, np.float32),
            gt_joints14=joints14 - joints14[:, list(J14_HIP_IDS)].mean(1, keepdims=True),
            keypoints3d_cam=joints29)
        for key, value in raw.items():
            if key.endswith('_mask'):
                if self.with_masks:  # kept bit-packed, unpacked per window
                    ann[f'packed_{key}'] = value
                continue
            if key not in ('joints24', 'joints17'):
                ann[key] = value
        if self.synthetic_meta['body_model']['is_standin']:
            print_log(f'SyntheticVideoDataset({self.split}): ground truth of the STAND-IN '
                      'body model, not SMPL.', logger='current', level=logging.WARNING)
        return ann

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        width = self.settings['image_size'][1]
        for key in [k for k in info if k.startswith('packed_')]:
            info[key[len('packed_'):]] = np.unpackbits(info.pop(key), axis=-1,
                                                       count=width).astype(bool)
        return info

    def load_images(self):
        return open_split_images(self.dataset_dir, self.split)
