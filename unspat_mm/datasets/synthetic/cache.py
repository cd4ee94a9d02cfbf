"""Settings, on-disk cache and loading of the synthetic benchmark.

A generated set lives in ``<cache_dir>/synthetic_<key>/`` where ``key`` hashes the full
settings, the generator version, the body model files and any motion clips, so a set is
generated once and reused; changing anything makes a new folder. Files per split:
``<split>_images.npy`` (N, H, W, 3) uint8 RGB (memory-mapped when read, so dataloader
workers share pages) and ``<split>_annotations.npz`` (arrays of :mod:`.generate`; the
masks bit-packed along the width). ``meta.json`` is written last and marks a finished set.
An existing folder whose ``meta.json`` is missing or differs is never overwritten: it
raises an error that says what to do.
"""
import copy
import hashlib
import json
import logging
import os
import os.path as osp
import shutil
import time

import numpy as np
from mmengine.logging import print_log

from unspat_mm.structures.skeleton import J14_HIP_IDS

from .body_model import body_model_fingerprint, load_body_model, prepare_body_model_dir
from .deepmimic import find_deepmimic_clips
from .generate import SequenceRenderer

__all__ = ['GENERATOR_VERSION', 'DEFAULT_SETTINGS', 'PRESETS', 'SPLITS', 'merge_settings',
           'settings_key', 'ensure_synthetic_dataset', 'load_split', 'open_split_images',
           'mean_pose_mpjpe']

GENERATOR_VERSION = 4
SPLITS = ('train', 'val', 'test')
DEFAULT_SETTINGS = dict(
    seed=0,
    # many short sequences: scenes (background, clothes, camera, motion) are what a model
    # can memorise, so their number matters more than the frames per sequence
    num_sequences=dict(train=240, val=8, test=40),  # ids in this order; 0 drops a split
    num_frames=24, fps=25., image_size=(160, 160),  # (H, W) of the full frames
    focal=(1.3, 1.7),  # focal length range, in image widths
    distance=(4., 5.5), lateral=(-.4, .4), camera_height=(.8, 1.3), drift=.2,  # metres
    betas_std=1., bbox_scale=1.2,
    bbox_jitter=dict(trans_smooth=.06, trans_noise=.02, scale_smooth=.08, scale_noise=.03),
    motion=dict(source='procedural', walk_prob=.5, liveliness=(.3, 1.), spread=(.15, .6),
                yaw_speed=.6, yaw_range=(-3.1416, 3.1416), deepmimic_prob=.5,
                deepmimic_dir=None),
    occlusion=dict(seq_prob=.8, max_events=3, length=(4, 24), radius=(.15, .35), speed=1.,
                   min_ratio=.1),
    noise_std=2.,
)
# 'tiny' is for tests and smoke runs
PRESETS = {'default': {}, 'tiny': dict(num_sequences=dict(train=3, val=1, test=2), num_frames=24,
                                       image_size=(96, 96))}
_MASKS = ('person_mask', 'occluder_mask')


def merge_settings(overrides=None, base=DEFAULT_SETTINGS):
    """Deep-merge ``overrides`` into ``base``; unknown keys raise KeyError."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if key not in out:
            raise KeyError(f'Unknown synthetic-data setting {key!r}; valid: {sorted(out)}')
        if isinstance(out[key], dict):
            out[key] = merge_settings(value, out[key])
        else:
            out[key] = copy.deepcopy(value)
    return out


def settings_key(settings, body_fingerprint, clip_ids=()):
    blob = json.dumps(dict(settings=settings, version=GENERATOR_VERSION, body=body_fingerprint,
                           clips=list(clip_ids)), sort_keys=True, default=list)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _split_ids(settings):
    ids, start = {}, 0
    for split in SPLITS:
        count = settings['num_sequences'].get(split, 0)
        ids[split] = list(range(start, start + count))
        start += count
    return ids


def mean_pose_mpjpe(train_joints14, test_joints14):
    """MPJPE (mm) on ``test_joints14`` (N, 14, 3) of the mean hip-centred J14 pose of
    ``train_joints14``: the 'no image' baseline a model must beat."""
    def centred(joints):
        return joints - joints[:, list(J14_HIP_IDS)].mean(1, keepdims=True)
    mean = centred(train_joints14.astype(np.float64)).mean(0)
    return float(np.linalg.norm(centred(test_joints14) - mean, axis=-1).mean() * 1000)


def _generate(out_dir, settings, renderer, split_ids):
    height, width = settings['image_size']
    meta = dict(splits={})
    joints14 = {}
    for split, seq_ids in split_ids.items():
        if not seq_ids:
            continue
        num = len(seq_ids) * settings['num_frames']
        images = np.lib.format.open_memmap(osp.join(out_dir, f'{split}_images.npy'), mode='w+',
                                           dtype=np.uint8, shape=(num, height, width, 3))
        arrays = []
        for n, seq_id in enumerate(seq_ids):
            seq = renderer(seq_id)
            images[n * settings['num_frames']:(n + 1) * settings['num_frames']] = seq.pop('images')
            for key in _MASKS:
                seq[key] = np.packbits(seq[key], axis=-1)
            arrays.append(seq)
        images.flush()
        del images
        ann = {k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]}
        ann['valid'] = np.ones(num, dtype=bool)
        np.savez_compressed(osp.join(out_dir, f'{split}_annotations.npz'), **ann)
        joints14[split] = ann.get('joints14')
        meta['splits'][split] = dict(num_frames=num, sequence_ids=seq_ids)
    if joints14.get('train') is not None and joints14.get('test') is not None:
        meta['mean_pose_mpjpe_mm'] = mean_pose_mpjpe(joints14['train'], joints14['test'])
    return meta


def _check_existing(out_dir, key):
    meta_path = osp.join(out_dir, 'meta.json')
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        meta = None
    files = [osp.join(out_dir, f'{s}_{kind}') for s in (meta or {}).get('splits', {})
             for kind in ('images.npy', 'annotations.npz')]
    if meta is None or meta.get('key') != key or not all(osp.isfile(p) for p in files):
        raise RuntimeError(
            f'{out_dir} exists but is not a complete synthetic set with key {key} (no or '
            'different meta.json, or files missing). unspat-mm never overwrites it: move or '
            'delete that folder, or set another cache_dir.')
    return meta


def ensure_synthetic_dataset(settings=None, cache_dir='data/synthetic', body_model_dir=None):
    """Return the folder of the synthetic set for ``settings`` (overrides of
    ``DEFAULT_SETTINGS``), generating it first if it is not cached yet.

    Args:
        settings (dict, optional): overrides of :data:`DEFAULT_SETTINGS`.
            Defaults to None.
        cache_dir (str): where sets (and the stand-in body model, if needed) are kept.
            Defaults to 'data/synthetic'.
        body_model_dir (str, optional): folder with SMPL; without SMPL there the stand-in
            in ``<cache_dir>/body_model_standin`` is used (see ``prepare_body_model_dir``).
            Defaults to None.
    """
    full = merge_settings(settings)
    model_dir, is_standin = prepare_body_model_dir(
        body_model_dir, osp.join(cache_dir, 'body_model_standin'))
    body = load_body_model(model_dir)
    clips = ([] if full['motion']['source'] == 'procedural' else
             find_deepmimic_clips(full['motion']['deepmimic_dir']))
    clip_ids = [(osp.basename(p), osp.getsize(p)) for p in clips]
    key = settings_key(full, body_model_fingerprint(body), clip_ids)
    out_dir = osp.join(cache_dir, f'synthetic_{key}')
    if osp.exists(out_dir):
        _check_existing(out_dir, key)
        return out_dir
    tmp_dir = f'{out_dir}.tmp-{os.getpid()}'
    os.makedirs(tmp_dir)
    print_log(f'Generating the synthetic set {out_dir} (seed {full["seed"]}) ...',
              logger='current', level=logging.INFO)
    start = time.perf_counter()
    try:
        meta = _generate(tmp_dir, full, SequenceRenderer(body, full, clips), _split_ids(full))
        meta.update(key=key, settings=full, generator_version=GENERATOR_VERSION,
                    body_model=dict(dir=osp.abspath(model_dir), is_standin=is_standin,
                                    fingerprint=body_model_fingerprint(body)),
                    clips=clip_ids, seconds=round(time.perf_counter() - start, 2))
        with open(osp.join(tmp_dir, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=1, default=list)
        os.rename(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)  # only our own temporary folder
        if osp.exists(out_dir):  # another process finished the same set first
            _check_existing(out_dir, key)
            return out_dir
        raise
    print_log(f'Synthetic set ready in {meta["seconds"]:.1f} s: {out_dir} (mean-pose baseline '
              f'MPJPE {meta.get("mean_pose_mpjpe_mm", float("nan")):.1f} mm)',
              logger='current', level=logging.INFO)
    return out_dir


def load_split(dataset_dir, split):
    """Annotations of one split: ``(annotations, meta)``, a dict of per-frame arrays (masks
    bit-packed along the width: :func:`numpy.unpackbits` with ``axis=-1``) and the parsed
    ``meta.json``."""
    with open(osp.join(dataset_dir, 'meta.json')) as f:
        meta = json.load(f)
    if split not in meta['splits']:
        raise KeyError(f'{dataset_dir} has no split {split!r}; it has {sorted(meta["splits"])}')
    with np.load(osp.join(dataset_dir, f'{split}_annotations.npz'), allow_pickle=False) as npz:
        ann = {k: npz[k] for k in npz.files}
    return ann, meta


def open_split_images(dataset_dir, split):
    """The (N, H, W, 3) uint8 RGB frames of one split, memory-mapped (read-only)."""
    return np.load(osp.join(dataset_dir, f'{split}_images.npy'), mmap_mode='r')
