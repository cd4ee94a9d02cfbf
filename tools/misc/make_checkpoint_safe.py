"""Convert a checkpoint once so that torch's ``weights_only=True`` loader accepts it.

    python tools/misc/make_checkpoint_safe.py IN.pth OUT.pth --trust

Reading IN needs full unpickling, which can run code hidden in the file: the
``--trust`` flag states that you trust its origin. OUT holds the same content with
numpy values and mmengine ``HistoryBuffer`` objects stored as tensors and plain
Python values (see ``unspat_mm/engine/checkpoint.py``); IN is not modified.
"""
import argparse
import os.path as osp
import sys

import torch

import unspat_mm  # noqa: F401
from unspat_mm.engine.checkpoint import load_weights_only, to_weights_only_safe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='checkpoint to convert (left unchanged)')
    parser.add_argument('dst', help='where to write the safe checkpoint')
    parser.add_argument('--trust', action='store_true',
                        help='fully unpickle SRC (only for files from a source you trust)')
    parser.add_argument('--force', action='store_true', help='overwrite DST if it exists')
    args = parser.parse_args(argv)
    if osp.realpath(args.src) == osp.realpath(args.dst):
        parser.error('DST must differ from SRC: the original is never overwritten.')
    if osp.exists(args.dst) and not args.force:
        parser.error(f'{args.dst} exists; pass --force to overwrite it.')
    if args.trust:
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    else:
        checkpoint = load_weights_only(args.src, map_location='cpu')
    torch.save(to_weights_only_safe(checkpoint), args.dst)
    torch.load(args.dst, map_location='cpu', weights_only=True)  # proves the claim
    print(f'wrote {args.dst} (loads with weights_only=True)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
