"""Video windows over an ``unspat-mm-video-v1`` annotation file (any converted dataset)."""
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np

from unspat_mm.registry import DATASETS
from .annotation_format import load_video_annotations
from .base_video_dataset import BaseVideoDataset

__all__ = ['VideoAnnotationDataset', 'LABEL_KINDS']

# The kinds of labels a dataset can carry; each maps to the validity flags it controls.
LABEL_KINDS = ('keypoints2d', 'keypoints3d', 'smpl')


@DATASETS.register_module()
class VideoAnnotationDataset(BaseVideoDataset):
    """T-frame windows over one converted split (see
    :mod:`unspat_mm.datasets.annotation_format` for the file's fields).

    Frames are read from ``data_prefix['img_path']`` (joined with ``data_root`` by
    mmengine; by default ``data_root`` itself) + the file's relative ``img_path``.

    ``labels`` says which kinds of label the dataset may hand to the model: for a kind
    left out, the validity flags are zeroed whatever the file holds (``keypoints2d`` ->
    ``keypoints2d_valid``; ``keypoints3d`` -> ``keypoints3d_valid``, and ``gt_joints14``
    / ``gt_joints17`` are dropped; ``smpl`` -> ``smpl_valid``). A kind kept is only as
    valid as the file's flags say. Subclasses fix the dataset each file must come from
    (``METAINFO['dataset_name']``, checked against the file's ``dataset_name``), the kinds
    it carries, and the benchmark's evaluation joint set (``eval_joint_set``,
    ``eval_root`` and ``eval_gt``: ``'mesh'`` for joints regressed from the SMPL ground
    truth, else the file field the metric reads).

    Args:
        ann_file (str): the ``.npz`` annotation file (relative paths are joined with
            ``data_root``), written by the converters in ``tools/dataset_converters/``.
        data_root (str): the dataset's folder (e.g. ``'data/3dpw'``). Defaults to ''.
        labels (Sequence[str], optional): label kinds to keep, a subset of the class's
            ``LABELS``. Defaults to None (all of them).
        num_frames (int): T, the window length (the paper: 16). Defaults to 16.
        stride (int): frames between consecutive window targets (1 for evaluation).
            Defaults to 1.
        data_prefix (dict, optional): mmengine's ``data_prefix``; frames are read from
            its ``img_path``. Defaults to None (``dict(img_path='')``).
        **kwargs (dict): :class:`BaseVideoDataset` / mmengine ``BaseDataset`` arguments
            (``pipeline``, ``test_mode``, ``filter_cfg``, ``seed``, ...).
    """
    METAINFO: dict = dict(dataset_name=None, eval_joint_set='j14', eval_root='hip_mid',
                          eval_gt='mesh')
    LABELS: Sequence[str] = LABEL_KINDS
    # what to run when the annotation file is missing
    CONVERTER: str = ('tools/dataset_converters/pw3d.py (3DPW) or '
                      'tools/dataset_converters/humandata.py (HumanData .npz files)')

    def __init__(self, ann_file: str, data_root: str = '',
                 labels: Optional[Sequence[str]] = None, num_frames: int = 16,
                 stride: int = 1, data_prefix: Optional[dict] = None, **kwargs):
        labels = tuple(self.LABELS if labels is None else labels)
        extra = [k for k in labels if k not in self.LABELS]
        if extra:
            raise ValueError(f'{type(self).__name__}: labels {extra} are not carried by this '
                             f'dataset; choose from {tuple(self.LABELS)}')
        self.labels = labels
        super().__init__(ann_file=ann_file, data_root=data_root,
                         data_prefix=data_prefix or dict(img_path=''),
                         num_frames=num_frames, stride=stride, **kwargs)

    def _missing_file_message(self) -> str:
        return (f'{type(self).__name__}: annotation file {self.ann_file!r} not found. '
                f'Convert the download first with {self.CONVERTER}; see README "Data" for '
                'the commands and the folder layout.')

    def load_annotations(self) -> Dict[str, np.ndarray]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(self._missing_file_message())
        ann = load_video_annotations(self.ann_file)
        file_name = str(ann.pop('dataset_name'))
        ann.pop('format')
        expected = self.METAINFO.get('dataset_name')
        if expected is not None and file_name != expected:
            raise ValueError(f'{type(self).__name__}: {self.ann_file} holds {file_name!r} '
                             f'annotations, expected {expected!r}; check ann_file in the config')
        self._metainfo.update(ann_dataset_name=file_name, labels=self.labels)
        prefix = self.data_prefix.get('img_path', '') or ''
        if prefix:
            ann['img_path'] = np.char.add(osp.join(prefix, ''), ann['img_path'])
        return self.mask_labels(ann)

    def mask_labels(self, ann: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Zero the validity of the label kinds not in ``self.labels`` (and their values,
        so that nothing unlabelled reaches a loss by mistake)."""
        num = len(ann['img_path'])
        if 'keypoints2d' not in self.labels:
            ann['keypoints2d'] = np.zeros_like(ann['keypoints2d'])
            ann['keypoints2d_valid'] = np.zeros_like(ann['keypoints2d_valid'])
        if 'keypoints3d' not in self.labels:
            ann['keypoints3d'] = np.zeros_like(ann['keypoints3d'])
            ann['keypoints3d_valid'] = np.zeros_like(ann['keypoints3d_valid'])
            ann.pop('gt_joints14', None)
            ann.pop('gt_joints17', None)
        if 'smpl' not in self.labels:
            ann['theta'] = np.zeros((num, 72), np.float32)
            ann['betas'] = np.zeros((num, 10), np.float32)
            ann['smpl_valid'] = np.zeros(num, np.float32)
        return ann
