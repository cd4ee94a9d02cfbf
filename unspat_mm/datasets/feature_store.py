"""Cached backbone features (the paper's Table 1 protocol): a pickle-free, sharded,
memory-mappable store written once by ``tools/extract_features.py``.

Layout, one folder per backbone and annotation file::

    <root>/<fingerprint[:16]>/<store name>/     e.g. data/features/3f2a.../pw3d_train/
        index.json                              what, from which weights, how cropped
        shard_00000.npy ... shard_<k>.npy       (n, C, h, w) float16 maps, n <= shard_size

Row ``i`` of the store is row ``i`` of the dataset's sorted annotations
(:class:`~unspat_mm.datasets.BaseVideoDataset`: by sequence, then frame index), i.e.
shard ``i // shard_size``, offset ``i % shard_size``; every row of the split is there,
whatever windows a config draws from it. The store name is the annotation file's stem
(``pw3d_train``). The fingerprint is the SHA-256 of the backbone's floating-point weights
and buffers (:func:`backbone_fingerprint`); it names the folder and is stored in the
index, so that features of different weights are never mixed. ``index.json`` fields:

- ``format`` (``'unspat-mm-features-v1'``), ``fingerprint`` (64 hex), ``checkpoint``
  (the file they were made from, for messages), ``dataset`` and ``source`` (the
  dataset class and annotation file), ``annotation_digest`` (SHA-256 of the rows'
  sequence ids, frame indices and crop boxes), ``num_frames``, ``shard_size``,
  ``num_shards``, ``feature_shape`` ``[C, h, w]``, ``dtype``;
- ``crop`` (``input_size`` ``[w, h]``, ``padding``, ``bbox_key``, ``border_value``: the
  test pipeline's :class:`VideoBBoxCrop`, no jitter), ``preprocess`` (mean, std,
  ``bgr_to_rgb``) and ``complete`` (false until the last shard is written).
"""
import hashlib
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from unspat_mm.engine.checkpoint import model_state_dict

__all__ = ['FEATURE_FORMAT', 'FeatureStore', 'backbone_fingerprint',
           'checkpoint_backbone_fingerprint', 'annotation_digest', 'feature_store_dir',
           'shard_path', 'write_json_atomic', 'write_shard_atomic', 'IDENTITY_FIELDS',
           'open_dataset_features']

FEATURE_FORMAT = 'unspat-mm-features-v1'
INDEX_FILE = 'index.json'
# index fields that must agree for two extractions to be the same store
IDENTITY_FIELDS = ('format', 'fingerprint', 'annotation_digest', 'num_frames', 'shard_size',
                   'num_shards', 'feature_shape', 'dtype', 'crop', 'preprocess')
EXTRACT_COMMAND = 'python tools/extract_features.py IMAGE_CONFIG {checkpoint} --feature-root {root}'
_FINGERPRINTS: Dict[tuple, str] = {}


def backbone_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a backbone state dict's floating-point tensors, by sorted name:
    name, shape and float32 bytes of each. Integer buffers (``num_batches_tracked``) and
    the memory layout (channels-last) do not count: they do not change the features."""
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        if not torch.is_tensor(value) or not value.is_floating_point():
            continue
        array = value.detach().to('cpu', torch.float32).contiguous().numpy()
        digest.update(f'{name}:{tuple(array.shape)};'.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def checkpoint_backbone_fingerprint(path: str) -> str:
    """:func:`backbone_fingerprint` of the ``backbone.*`` weights in a checkpoint file
    (loaded with ``weights_only=True``); cached per process by path, size and mtime."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'feature_cfg.checkpoint {path!r} does not exist: it names the weights whose '
            'cached features to read (the paper configs: the converted HybrIK file, made '
            'with `python tools/model_converters/hybrik_to_unspat.py HYBRIK.pth '
            'data/pretrained/hybrik_res34_unspat.pth`).')
    stat = os.stat(path)
    key = (osp.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FINGERPRINTS:
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        state = model_state_dict(checkpoint)
        backbone = {k[len('backbone.'):]: v for k, v in state.items()
                    if k.startswith('backbone.')}
        if not backbone:
            raise KeyError(f'{path} has no backbone.* weights: it cannot be the checkpoint '
                           'cached features were extracted with.')
        _FINGERPRINTS[key] = backbone_fingerprint(backbone)
    return _FINGERPRINTS[key]


def annotation_digest(ann: Mapping[str, np.ndarray], bbox_key: str = 'bbox') -> str:
    """SHA-256 (hex) of what makes a row's features: its sequence id, frame index and
    crop box, in row order."""
    digest = hashlib.sha256()
    digest.update(np.asarray(ann['sequence_id']).astype(str).astype('U').tobytes())
    digest.update(np.asarray(ann['frame_index'], np.int64).tobytes())
    digest.update(np.asarray(ann[bbox_key], np.float64).tobytes())
    return digest.hexdigest()


def feature_store_dir(root: str, fingerprint: str, name: str) -> str:
    return osp.join(root, fingerprint[:16], name)


def shard_path(directory: str, index: int) -> str:
    return osp.join(directory, f'shard_{index:05d}.npy')


def write_json_atomic(path: str, obj: dict) -> None:
    """Write ``obj`` as JSON to ``path`` through a temp file and a rename."""
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)


def write_shard_atomic(path: str, array: np.ndarray) -> None:
    """``np.save`` to a temp name, then rename: a shard file either is whole or absent."""
    tmp = f'{path}.tmp'
    with open(tmp, 'wb') as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    os.replace(tmp, path)


def read_index(directory: str) -> Optional[dict]:
    path = osp.join(directory, INDEX_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class FeatureStore:
    """Read side of one store: ``read(rows)`` -> (len(rows), C, h, w) maps.

    Shards are memory-mapped on first use (at most ``max_open`` at a time per process, so
    that the open files stay few); a pickled store (a data worker's copy) reopens them.

    Args:
        directory (str): the store's folder.
        index (dict): its parsed ``index.json``.
        max_open (int): memory-mapped shards kept open. Defaults to 32.
    """

    def __init__(self, directory: str, index: dict, max_open: int = 32):
        self.directory, self.index, self.max_open = directory, index, int(max_open)
        self._shards: 'OrderedDict[int, np.ndarray]' = OrderedDict()

    def __len__(self) -> int:
        return int(self.index['num_frames'])

    @property
    def crop(self) -> dict:
        return self.index['crop']

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_shards'] = OrderedDict()
        return state

    def _shard(self, i: int) -> np.ndarray:
        if i in self._shards:
            self._shards.move_to_end(i)
            return self._shards[i]
        array = np.load(shard_path(self.directory, i), mmap_mode='r', allow_pickle=False)
        self._shards[i] = array
        if len(self._shards) > self.max_open:
            self._shards.popitem(last=False)
        return array

    def read(self, rows: Sequence[int]) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f'{self.directory}: rows {rows.tolist()} outside [0, {len(self)})')
        size = int(self.index['shard_size'])
        return np.stack([self._shard(int(r) // size)[int(r) % size] for r in rows])

    @classmethod
    def open(cls, directory: str, fingerprint: str, ann: Mapping[str, np.ndarray],
             hint: str) -> 'FeatureStore':
        """Open and check a finished store.

        Raises:
            FileNotFoundError: no store there (``hint`` says how to make it).
            ValueError: it holds features of other weights or other annotations, is
                incomplete or of an unknown format.
        """
        index = read_index(directory)
        if index is None:
            raise FileNotFoundError(f'No cached features at {directory}. {hint}')
        if index.get('format') != FEATURE_FORMAT:
            raise ValueError(f'{directory}/{INDEX_FILE} is not a {FEATURE_FORMAT} index.')
        if index['fingerprint'] != fingerprint:
            raise ValueError(
                f'{directory} holds features of backbone {index["fingerprint"][:16]} (made '
                f'from {index.get("checkpoint")}), not of the requested {fingerprint[:16]}: '
                f'features of different weights cannot be mixed. {hint}')
        if not index.get('complete'):
            done = sum(osp.isfile(shard_path(directory, i)) for i in range(index['num_shards']))
            raise ValueError(f'{directory}: extraction incomplete ({done}/{index["num_shards"]}'
                             ' shards); rerun the extraction command to finish it (finished '
                             'shards are kept).')
        bbox_key = index['crop']['bbox_key']
        if index['num_frames'] != len(ann['sequence_id']) or \
                index['annotation_digest'] != annotation_digest(ann, bbox_key):
            raise ValueError(f'{directory} was extracted from other annotations than '
                             f'{index.get("source")} holds now (rows, frames or boxes '
                             f'differ); extract again into a new --feature-root. {hint}')
        return cls(directory, index)


def _other_backbones(root: str, name: str, fingerprint: str) -> list:
    found = []
    if osp.isdir(root):
        for folder in sorted(os.listdir(root)):
            index = read_index(osp.join(root, folder, name))
            if index and index.get('fingerprint') != fingerprint:
                found.append(f'{folder} (from {index.get("checkpoint")})')
    return found


def open_dataset_features(dataset, feature_cfg: dict) -> FeatureStore:
    """The store of ``dataset`` (a :class:`BaseVideoDataset` with loaded ``ann``) that
    ``feature_cfg`` names: ``dict(root=..., checkpoint=...)`` (the weights' file; its
    backbone fingerprint is computed) or ``dict(root=..., fingerprint=...)``."""
    unknown = set(feature_cfg) - {'root', 'checkpoint', 'fingerprint'}
    if unknown or 'root' not in feature_cfg or \
            ('checkpoint' in feature_cfg) == ('fingerprint' in feature_cfg):
        raise ValueError(f'{type(dataset).__name__}: feature_cfg must be dict(root=..., '
                         f'checkpoint=...) or dict(root=..., fingerprint=...), got {feature_cfg}')
    root = feature_cfg['root']
    checkpoint = feature_cfg.get('checkpoint')
    fingerprint = feature_cfg.get('fingerprint') or checkpoint_backbone_fingerprint(checkpoint)
    name = dataset.feature_store_name
    directory = feature_store_dir(root, fingerprint, name)
    hint = (f'{type(dataset).__name__} ({name}) reads the features of backbone '
            f'{fingerprint[:16]}; make them with `'
            + EXTRACT_COMMAND.format(checkpoint=checkpoint or 'CHECKPOINT', root=root)
            + '` (IMAGE_CONFIG: the image config with these datasets, e.g. '
            'configs/unspat_3dpw.py; see docs/cached_features.md).')
    others = _other_backbones(root, name, fingerprint)
    if others:
        hint += f' {root} has {name} features of other backbones only: {", ".join(others)}.'
    return FeatureStore.open(directory, fingerprint, dataset.ann, hint)
