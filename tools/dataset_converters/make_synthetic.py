"""Generate (or find in the cache) the synthetic video benchmark, and report on it.

    python tools/dataset_converters/make_synthetic.py [--cache-dir data/synthetic]
        [--body-model-dir data/body_models] [--preset default|tiny] [--seed 0]
        [--set motion.walk_prob=0.8 --set num_frames=32 ...] [--max-seconds 120]
        [--preview preview.png]

Prints the folder, the body model used (SMPL or the STAND-IN), the frames per split, the
generation time and the mean-pose baseline MPJPE (mean hip-centred J14 pose of the train
split, evaluated on the test split; a model that sees the images must beat it clearly).
``--max-seconds`` turns the generation time into a check (exit status 1 when slower):
run it with a fresh ``--cache-dir`` to time the default set. Nothing is overwritten.
"""
import argparse
import ast
import json
import os.path as osp
import sys
import time

import cv2
import numpy as np

import unspat_mm  # noqa: F401
from unspat_mm.datasets.synthetic import (PRESETS, ensure_synthetic_dataset, load_split,
                                          merge_settings, open_split_images)


def _parse_set(items):
    """['a.b=1', 'c=(1, 2)'] -> {'a': {'b': 1}, 'c': (1, 2)} (values as Python literals)."""
    out = {}
    for item in items or []:
        key, sep, text = item.partition('=')
        if not sep:
            raise ValueError(f'--set expects KEY=VALUE, got {item!r}')
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        node = out
        *parents, leaf = key.split('.')
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _preview(dataset_dir, path, split='train', num=8):
    """Write a grid of frames with their jittered box (white), tight box (green) and
    2D keypoints (red), occluded frames framed in yellow."""
    ann, _ = load_split(dataset_dir, split)
    images = open_split_images(dataset_dir, split)
    rows = np.linspace(0, len(images) - 1, num).astype(int)
    tiles = []
    for row in rows:
        img = np.ascontiguousarray(images[row][..., ::-1])
        for key, color in (('bbox', (255, 255, 255)), ('bbox_gt', (0, 255, 0))):
            cx, cy, w, h = ann[key][row]
            cv2.rectangle(img, (int(cx - w / 2), int(cy - h / 2)), (int(cx + w / 2),
                                                                    int(cy + h / 2)), color, 1)
        for x, y in ann['keypoints2d'][row]:
            cv2.circle(img, (int(x), int(y)), 1, (0, 0, 255), -1)
        if ann['occluded'][row]:
            cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (0, 255, 255), 2)
        tiles.append(img)
    cv2.imwrite(path, np.concatenate(tiles, axis=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cache-dir', default='data/synthetic')
    parser.add_argument('--body-model-dir', default='data/body_models',
                        help='folder with SMPL_NEUTRAL.npz; without it the stand-in is used')
    parser.add_argument('--preset', default='default', choices=sorted(PRESETS))
    parser.add_argument('--seed', type=int, help='generation seed (default: the preset\'s)')
    parser.add_argument('--set', action='append', metavar='KEY=VALUE',
                        help='override a setting, e.g. --set occlusion.seq_prob=0.5')
    parser.add_argument('--max-seconds', type=float,
                        help='fail (exit 1) when generating took longer than this')
    parser.add_argument('--preview', help='write a PNG strip of train frames here')
    args = parser.parse_args(argv)
    overrides = _parse_set(args.set)
    if args.seed is not None:
        overrides['seed'] = args.seed
    settings = merge_settings(overrides, merge_settings(PRESETS[args.preset]))
    start = time.perf_counter()
    out_dir = ensure_synthetic_dataset(settings, args.cache_dir, args.body_model_dir)
    elapsed = time.perf_counter() - start
    with open(osp.join(out_dir, 'meta.json')) as f:
        meta = json.load(f)
    body = meta['body_model']
    print(f'synthetic set: {out_dir}')
    kind = 'STAND-IN, NOT SMPL' if body['is_standin'] else 'SMPL'
    print(f'body model:    {body["dir"]} ({kind})')
    for split, info in meta['splits'].items():
        print(f'{split:>5}: {len(info["sequence_ids"])} sequences, {info["num_frames"]} frames')
    print(f'generation:    {meta["seconds"]:.1f} s (this call: {elapsed:.1f} s)')
    if 'mean_pose_mpjpe_mm' in meta:
        print(f'mean-pose baseline MPJPE (test): {meta["mean_pose_mpjpe_mm"]:.1f} mm')
    if args.preview:
        _preview(out_dir, args.preview)
        print(f'preview:       {args.preview}')
    if args.max_seconds is not None and meta['seconds'] > args.max_seconds:
        print(f'FAIL: generation took {meta["seconds"]:.1f} s > {args.max_seconds} s')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
