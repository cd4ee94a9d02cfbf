"""Run a frozen backbone once over every frame of a config's datasets and cache the maps
(the paper's Table 1 protocol: features "extracted from a pre-trained network without
fine-tuning"), so that the neck and head train from them (configs/unspat_3dpw_features.py).

    python tools/extract_features.py CONFIG CHECKPOINT [--feature-root data/features]
        [--phases train val test] [--batch-size 64] [--workers 4] [--device cuda]
        [--shard-size 2048] [--dtype float16] [--max-shards N] [--cfg-options k=v ...]

CONFIG is an *image* config (e.g. configs/unspat_3dpw.py): its ``model.backbone`` and
``model.data_preprocessor`` say how frames become maps, the ``VideoBBoxCrop`` of its test
pipeline how frames are cropped (no augmentation; a crop with jitter is refused), and the
datasets of its ``--phases`` loaders which frames: every row of each annotation file.
CHECKPOINT holds ``backbone.*`` weights (e.g. ``data/pretrained/hybrik_res34_unspat.pth``).

Each split is written to ``<feature-root>/<fingerprint[:16]>/<annotation stem>/`` (layout:
:mod:`unspat_mm.datasets.feature_store`), shard by shard, each shard through a temp file
and a rename. Rerunning after an interrupt (or ``--max-shards``) keeps the finished shards
and writes the rest; the result is byte-identical to an uninterrupted run. A folder
holding another backbone's (or another crop's, or other annotations') features is refused
and left untouched.
"""
import argparse
import json
import math
import os
import os.path as osp
from typing import List

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader, Dataset

import unspat_mm  # noqa: F401  (registers everything; weights-only checkpoint loading)
from unspat_mm.datasets import feature_store as fs
from unspat_mm.datasets.transforms import LoadVideoFrames
from unspat_mm.registry import DATASETS, MODELS, TRANSFORMS

# dataset settings that change windows or labels, not the rows and their crops
_WINDOW_KEYS = ('pipeline', 'labels', 'test_mode', 'filter_cfg', 'indices', 'num_frames',
                'stride', 'frame_interval', 'seed', 'feature_cfg', 'lazy_init')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='image config (backbone, test crop, datasets)')
    parser.add_argument('checkpoint', help='checkpoint with the backbone.* weights')
    parser.add_argument('--feature-root', default='data/features',
                        help='where the <fingerprint>/<split> folders go')
    parser.add_argument('--phases', nargs='+', default=['train', 'val', 'test'],
                        choices=['train', 'val', 'test'], help='whose datasets to extract')
    parser.add_argument('--batch-size', type=int, default=64, help='frames per forward')
    parser.add_argument('--workers', type=int, default=4, help='frame-loading processes')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--shard-size', type=int, default=2048,
                        help='frames per shard file (a multiple of --batch-size)')
    parser.add_argument('--dtype', choices=['float16', 'float32'], default='float16',
                        help='stored precision (float16: 64 KiB per 8x8x512 map)')
    parser.add_argument('--max-shards', type=int, default=None,
                        help='write at most N new shards, then stop (rerun to continue)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. data roots')
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.shard_size < 1 or args.shard_size % args.batch_size:
        parser.error(f'--shard-size ({args.shard_size}) must be a positive multiple of '
                     f'--batch-size ({args.batch_size}), so that every shard is computed in '
                     'the same batches whether or not the run was interrupted')
    return args


def find_crop(cfg: Config) -> dict:
    """The ``VideoBBoxCrop`` config of the test pipeline (the dataset's, else the
    ``test_pipeline`` variable); refused if it augments."""
    test = cfg.get('test_dataloader') or {}
    for pipeline in ((test.get('dataset') or {}).get('pipeline'), cfg.get('test_pipeline')):
        crops = [t for t in pipeline or []
                 if t.get('type') in ('VideoBBoxCrop', 'unspat_mm.VideoBBoxCrop')]
        if crops:
            crop = TRANSFORMS.build(crops[0])
            if crop.scale_factor or crop.shift_factor or (crop.rot_factor and crop.rot_prob):
                raise ValueError(f'{cfg.filename}: the test pipeline\'s VideoBBoxCrop jitters '
                                 '(scale/shift/rotation); features are cached unaugmented')
            return crop
    raise ValueError(f'{cfg.filename} has no VideoBBoxCrop in its test pipeline: give the '
                     'image config whose crops the features should be made from, e.g. '
                     'configs/unspat_3dpw.py')


def leaf_dataset_cfgs(cfg: Config, phases) -> List[dict]:
    """The distinct leaf datasets (through ``datasets``/``dataset`` wrappers) of the
    phases' loaders, without their window settings."""
    leaves, seen = [], set()

    def visit(node):
        if 'datasets' in node:
            for child in node['datasets']:
                visit(child)
        elif 'dataset' in node:
            visit(node['dataset'])
        else:
            leaf = {k: v for k, v in node.items() if k not in _WINDOW_KEYS}
            key = json.dumps(leaf, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                leaves.append(dict(leaf, pipeline=[], test_mode=True))

    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if loader:
            visit(loader['dataset'])
    return leaves


def load_backbone(cfg: Config, checkpoint: str, device: str):
    """(backbone in eval mode on ``device``, data preprocessor, channels_last) with the
    checkpoint's ``backbone.*`` weights, all of them."""
    if cfg.model.get('backbone') is None:
        raise ValueError(f'{cfg.filename} has no backbone (it reads cached features): give the '
                         'image config whose backbone makes them, e.g. configs/unspat_3dpw.py')
    backbone = MODELS.build(cfg.model.backbone)
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    weights = {k.split('backbone.', 1)[1]: v for k, v in state.items()
               if k.startswith(('backbone.', 'module.backbone.'))}
    if not weights:
        raise KeyError(f'{checkpoint} has no backbone.* weights; give an unspat-mm checkpoint '
                       '(convert HybrIK with tools/model_converters/hybrik_to_unspat.py)')
    result = backbone.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith('num_batches_tracked')]
    if missing or result.unexpected_keys:
        raise KeyError(f'{checkpoint}: its backbone does not match {cfg.filename}\'s (missing '
                       f'{missing[:5]}, unexpected {result.unexpected_keys[:5]})')
    channels_last = bool(cfg.model.get('channels_last', False))
    if channels_last:
        backbone.to(memory_format=torch.channels_last)
    preprocessor = MODELS.build(cfg.model.get('data_preprocessor')
                                or dict(type='VideoDataPreprocessor'))
    backbone.to(device)
    backbone.eval()  # (mmpose's ResNet.train() returns None)
    return backbone, preprocessor.to(device), channels_last


@torch.inference_mode()
def frames_to_features(backbone, preprocessor, frames: torch.Tensor,
                       channels_last: bool = False) -> torch.Tensor:
    """(N, 3, H, W) uint8 crops -> (N, C, h, w) float32 maps, as ``UNSPAT.extract_feat``
    computes them."""
    inputs = preprocessor(dict(inputs=[frames]))['inputs'][0]
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    feats = backbone(inputs)
    feats = feats[-1] if isinstance(feats, (tuple, list)) else feats
    return feats.float().contiguous()


class FrameCrops(Dataset):
    """Row ``i`` of a video dataset's annotations -> its (3, H, W) uint8 crop."""

    def __init__(self, dataset, crop):
        self.dataset, self.crop, self.load = dataset, crop, LoadVideoFrames()

    def __len__(self):
        return len(self.dataset.ann['sequence_id'])

    def __getitem__(self, row: int) -> torch.Tensor:
        ann, rows = self.dataset.ann, slice(row, row + 1)
        results = {self.crop.bbox_key: ann[self.crop.bbox_key][rows]}
        if 'img_index' in ann:
            results.update(img_index=ann['img_index'][rows], images=self.dataset.images)
        else:
            results['img_path'] = ann['img_path'][rows]
        imgs = self.crop(self.load(results))['imgs']
        return torch.from_numpy(np.ascontiguousarray(imgs[0])).permute(2, 0, 1)


def _check_existing(directory: str, expected: dict) -> None:
    index = fs.read_index(directory)
    if index is None:
        return
    diff = [k for k in fs.IDENTITY_FIELDS if index.get(k) != expected[k]]
    if diff:
        what = ', '.join(f'{k}: {index.get(k)} there, {expected[k]} now' for k in diff[:3])
        raise ValueError(f'{directory} already holds other features ({what}; made from '
                         f'{index.get("checkpoint")}). Nothing was changed: give another '
                         '--feature-root, or delete that folder yourself.')


def extract_split(dataset, crop, backbone, preprocessor, channels_last, fingerprint, args,
                  feature_shape, max_shards=None) -> dict:
    """Write (or finish) one split's store, at most ``max_shards`` new shards; returns a
    summary of what it did."""
    num = len(dataset.ann['sequence_id'])
    size = args.shard_size
    directory = fs.feature_store_dir(args.feature_root, fingerprint, dataset.feature_store_name)
    source = osp.basename(dataset.ann_file or '') or dataset.feature_store_name
    index = dict(
        format=fs.FEATURE_FORMAT, fingerprint=fingerprint, checkpoint=args.checkpoint,
        dataset=type(dataset).__name__, source=source,
        annotation_digest=fs.annotation_digest(dataset.ann, crop.bbox_key),
        num_frames=num, shard_size=size, num_shards=math.ceil(num / size),
        feature_shape=list(feature_shape), dtype=args.dtype,
        crop=dict(input_size=list(crop.input_size), padding=float(crop.padding),
                  bbox_key=crop.bbox_key, border_value=int(crop.border_value)),
        preprocess=dict(mean=[round(float(v), 6) for v in preprocessor.mean.flatten()],
                        std=[round(float(v), 6) for v in preprocessor.std.flatten()],
                        bgr_to_rgb=bool(preprocessor.bgr_to_rgb)),
        complete=False)
    _check_existing(directory, index)
    os.makedirs(directory, exist_ok=True)
    existing = fs.read_index(directory)
    if existing is None:
        fs.write_json_atomic(osp.join(directory, fs.INDEX_FILE), index)
        existing = index
    shard_rows = [range(i * size, min((i + 1) * size, num)) for i in range(index['num_shards'])]
    pending = []
    for i, rows in enumerate(shard_rows):
        path = fs.shard_path(directory, i)
        if not osp.isfile(path):
            pending.append(i)
            continue
        shape = np.load(path, mmap_mode='r', allow_pickle=False).shape
        if shape != (len(rows), *feature_shape):
            raise ValueError(f'{path} has shape {shape}, expected {(len(rows), *feature_shape)}'
                             ': it is not from this extraction; delete it to redo it')
    todo = pending[:max_shards] if max_shards is not None else pending
    summary = dict(directory=directory, kept=len(shard_rows) - len(pending), written=0)
    if todo:
        batches = [list(rows[j:j + args.batch_size]) for i in todo
                   for rows in [shard_rows[i]] for j in range(0, len(rows), args.batch_size)]
        loader = DataLoader(FrameCrops(dataset, crop), batch_sampler=batches,
                            num_workers=args.workers)
        print(f'\n{directory}: {sum(len(shard_rows[i]) for i in todo)} frames, '
              f'{len(todo)} shard(s) to write, {summary["kept"]} kept')
        bar = ProgressBar(sum(len(shard_rows[i]) for i in todo))
        shards, buffer = iter(todo), []
        current = next(shards)
        for frames in loader:
            feats = frames_to_features(backbone, preprocessor, frames.to(args.device),
                                       channels_last)
            buffer.append(feats.cpu().numpy().astype(args.dtype))
            bar.update(len(frames))
            if sum(len(b) for b in buffer) == len(shard_rows[current]):
                fs.write_shard_atomic(fs.shard_path(directory, current), np.concatenate(buffer))
                summary['written'] += 1
                buffer, current = [], next(shards, None)
    if len(todo) == len(pending) and not existing.get('complete'):
        fs.write_json_atomic(osp.join(directory, fs.INDEX_FILE),
                             dict(existing, complete=True))
    summary['complete'] = len(todo) == len(pending)
    return summary


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'unspat_mm'))
    crop = find_crop(cfg)
    backbone, preprocessor, channels_last = load_backbone(cfg, args.checkpoint, args.device)
    fingerprint = fs.backbone_fingerprint(backbone.state_dict())
    with torch.inference_mode():
        probe = torch.zeros(1, 3, crop.input_size[1], crop.input_size[0], dtype=torch.uint8)
        feature_shape = tuple(frames_to_features(backbone, preprocessor,
                                                 probe.to(args.device), channels_last).shape[1:])
    print(f'backbone {fingerprint[:16]} ({args.checkpoint}): {feature_shape} maps of '
          f'{crop.input_size} crops -> {osp.join(args.feature_root, fingerprint[:16])}')
    summaries, budget = [], args.max_shards
    for leaf in leaf_dataset_cfgs(cfg, args.phases):
        dataset = DATASETS.build(leaf)
        summary = extract_split(dataset, crop, backbone, preprocessor, channels_last,
                                fingerprint, args, feature_shape, budget)
        summaries.append(summary)
        if budget is not None:
            budget -= summary['written']
        state = 'complete' if summary['complete'] else 'incomplete: rerun to continue'
        print(f'{summary["directory"]}: {summary["written"]} shard(s) written, '
              f'{summary["kept"]} kept ({state})')
        if not summary['complete']:
            break  # --max-shards reached
    return summaries


if __name__ == '__main__':
    main()
