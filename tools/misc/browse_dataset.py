"""Write PNGs of what the model will see: a window's T crops, tiled, with the ground-truth
2D skeleton drawn on, so that a pipeline can be checked before training for days.

    python tools/misc/browse_dataset.py CONFIG [--phase train|val|test] [--output-dir DIR]
        [--max-windows N] [--epoch E] [--overwrite] [--cfg-options k=v ...]

Builds ``<phase>_dataloader.dataset`` from CONFIG and runs its pipeline up to (not
including) ``PackVideoMeshInputs``, with the augmentation of epoch ``E`` (draw ids ``E *
len + i``, as :class:`DrawIdSampler` gives them). Writes one PNG per window, named
``<phase>_<draw id>_<sequence>_<frame>.png``: the T crops row by row (the target frame
outlined in yellow); bones of HybrIK's skeleton between valid joints (left side blue,
right side red, centre green) and dots on the valid joints. Existing files are kept
unless ``--overwrite``.
"""
import argparse
import math
import os
import os.path as osp
import re
import sys
from typing import List, Sequence

import cv2
import numpy as np
from mmengine.config import Config, DictAction

import unspat_mm  # noqa: F401
from unspat_mm.datasets import BaseVideoDataset, MixedVideoDataset
from unspat_mm.registry import DATASETS
from unspat_mm.structures.skeleton import HYBRIK_JOINT_NAMES, HYBRIK_PARENTS

PACK_TRANSFORMS = ('PackVideoMeshInputs', )
TARGET_COLOUR = (255, 220, 0)  # RGB
SIDE_COLOURS = dict(left=(40, 90, 255), right=(255, 50, 50), centre=(40, 220, 40))


def joint_colour(index: int) -> tuple:
    name = HYBRIK_JOINT_NAMES[index]
    side = 'left' if name.startswith('left') else 'right' if name.startswith('right') else \
        'centre'
    return SIDE_COLOURS[side]


def leaf_datasets(dataset) -> List[BaseVideoDataset]:
    if isinstance(dataset, MixedVideoDataset):
        return [leaf for member in dataset.datasets for leaf in leaf_datasets(member)]
    if not isinstance(dataset, BaseVideoDataset):
        raise TypeError(f'browse_dataset: {type(dataset).__name__} is not an unspat-mm video '
                        'dataset (BaseVideoDataset or MixedVideoDataset)')
    return [dataset]


def stop_before_packing(dataset) -> None:
    """Cut every member's pipeline before its packing transform (in place)."""
    for leaf in leaf_datasets(dataset):
        transforms = leaf.pipeline.transforms
        names = [type(t).__name__ for t in transforms]
        cut = next((i for i, n in enumerate(names) if n in PACK_TRANSFORMS), len(names))
        leaf.pipeline.transforms = transforms[:cut]


def draw_skeleton(img: np.ndarray, keypoints: np.ndarray, valid: np.ndarray,
                  radius: int = 2, thickness: int = 1) -> np.ndarray:
    """Draw bones between valid joints and a dot on each valid joint onto an RGB crop.

    ``keypoints`` (29, 2) are crop pixels with pixel ``i`` spanning ``[i, i + 1)``; OpenCV
    puts pixel centres at integers, hence the half-pixel shift.
    """
    out = np.ascontiguousarray(img).copy()
    points = np.round(np.asarray(keypoints, np.float64) - .5).astype(np.int64)
    valid = np.asarray(valid) > 0
    for child, parent in enumerate(HYBRIK_PARENTS):
        if parent >= 0 and valid[child] and valid[parent]:
            cv2.line(out, tuple(int(v) for v in points[parent]),
                     tuple(int(v) for v in points[child]), joint_colour(child), thickness,
                     cv2.LINE_8)  # not anti-aliased: exact colours
    for j in np.flatnonzero(valid):
        cv2.circle(out, tuple(int(v) for v in points[j]), radius, joint_colour(j), -1,
                   cv2.LINE_8)
    return out


def tile_window(results: dict, columns: int = 0) -> np.ndarray:
    """(rows * h, columns * w, 3) RGB grid of the window's crops with the skeleton drawn."""
    imgs = np.asarray(results['imgs'])
    if imgs.ndim != 4 or imgs.shape[-1] != 3:
        raise ValueError(f'browse_dataset: expected (T, h, w, 3) frames, got {imgs.shape}')
    num, height, width = imgs.shape[:3]
    columns = columns or math.ceil(math.sqrt(num))
    rows = math.ceil(num / columns)
    grid = np.zeros((rows * height, columns * width, 3), np.uint8)
    keypoints = results.get('keypoints2d')
    valid = results.get('keypoints2d_valid', np.zeros(imgs.shape[:1] + (len(HYBRIK_PARENTS), )))
    for t in range(num):
        tile = imgs[t] if keypoints is None else draw_skeleton(imgs[t], keypoints[t], valid[t])
        if t == results.get('center_index', -1):
            tile = cv2.rectangle(tile.copy(), (0, 0), (width - 1, height - 1), TARGET_COLOUR, 1)
        r, c = divmod(t, columns)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = tile
    return grid


def window_name(phase: str, draw_id: int, sequence_id, frame_index: int) -> str:
    sequence = re.sub(r'[^A-Za-z0-9_-]+', '_', str(sequence_id)).strip('_')
    return f'{phase}_{draw_id:06d}_{sequence}_{int(frame_index):06d}.png'


def window_info(dataset, draw_id: int) -> dict:
    """Annotation of draw id ``draw_id`` without running the pipeline."""
    if isinstance(dataset, MixedVideoDataset):
        return dataset.get_data_info(draw_id)
    return dataset.get_data_info(draw_id % len(dataset))


def browse(cfg: Config, phase: str, output_dir: str, max_windows: int, epoch: int = 0,
           overwrite: bool = False) -> List[str]:
    """Write the PNGs; returns their paths (see the module docstring)."""
    loader = cfg.get(f'{phase}_dataloader')
    if not loader or 'dataset' not in loader:
        raise KeyError(f'browse_dataset: the config has no {phase}_dataloader.dataset')
    dataset = DATASETS.build(loader['dataset'])
    if isinstance(dataset, MixedVideoDataset):
        dataset.full_init()
    stop_before_packing(dataset)
    num = min(int(max_windows), len(dataset))
    # spread over the dataset: neighbouring windows of a sequence look alike
    indices = np.unique(np.linspace(0, len(dataset) - 1, num).round().astype(np.int64))
    draw_ids = [epoch * len(dataset) + int(i) for i in indices]
    names = []
    for draw_id in draw_ids:
        info = window_info(dataset, draw_id)
        names.append(osp.join(output_dir, window_name(
            phase, draw_id, info['sequence_id'], info['frame_index'])))
    existing = [p for p in names if osp.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f'browse_dataset: {existing[0]} already exists ({len(existing)} '
                              'of the outputs do); pass --overwrite or another --output-dir')
    os.makedirs(output_dir, exist_ok=True)
    for draw_id, path in zip(draw_ids, names):
        results = dataset[draw_id]
        if 'imgs' not in results:
            raise KeyError('browse_dataset: the pipeline output has no "imgs"; put the '
                           'packing transform last (PackVideoMeshInputs)')
        cv2.imwrite(path, cv2.cvtColor(tile_window(results), cv2.COLOR_RGB2BGR))
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--phase', choices=('train', 'val', 'test'), default='train')
    parser.add_argument('--output-dir', default='work_dirs/browse_dataset')
    parser.add_argument('--max-windows', type=int, default=10)
    parser.add_argument('--epoch', type=int, default=0,
                        help='whose augmentation to show (training draws differ per epoch)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing PNGs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> List[str]:
    args = parse_args(argv)
    if args.max_windows < 1 or args.epoch < 0:
        raise SystemExit('error: --max-windows must be >= 1 and --epoch >= 0')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        paths = browse(cfg, args.phase, args.output_dir, args.max_windows, args.epoch,
                       args.overwrite)
    except (FileExistsError, FileNotFoundError, KeyError) as err:
        print(f'error: {err.args[0] if isinstance(err, KeyError) else err}', file=sys.stderr)
        raise SystemExit(1)
    for path in paths:
        print(path)
    return paths


if __name__ == '__main__':
    main()
