"""Convert an mmhuman3d HumanData ``.npz`` into an unspat-mm annotation file.

    python tools/dataset_converters/humandata.py HUMANDATA_NPZ OUT_NPZ --dataset h36m
        [--image-root DIR] [--image-suffix .jpg] [--strip-prefix PREFIX]
        [--bbox-source keypoints|file] [--overwrite]

``--dataset``: h36m, mpi_inf_3dhp, 3dpw (pw3d), pennaction, posetrack, insta_variety.
The input is only read (its object arrays -- ``smpl``, ``meta`` -- through a restricted
unpickler that admits only numpy arrays and plain containers). OUT_NPZ (format
``unspat-mm-video-v1``) is kept unless ``--overwrite`` and must not lie in the input's
folder or under ``--image-root``; image paths stay relative to the data root mmhuman3d
used (give it as ``--image-root`` to check that every frame exists). Conventions:
``unspat_mm/datasets/converters/humandata.py``.
"""
import argparse
import sys

from unspat_mm.datasets.converters.humandata import HUMANDATA_DATASETS, convert_humandata_file
from unspat_mm.utils.safe_unpickle import CorruptFileError, UnsafePickleError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('humandata', help='HumanData .npz (e.g. h36m_train.npz)')
    parser.add_argument('out', help='output .npz')
    parser.add_argument('--dataset', required=True, choices=sorted(HUMANDATA_DATASETS))
    parser.add_argument('--image-root', help='data root of the images; checks they exist')
    parser.add_argument('--image-suffix', default=None,
                        help='append to every image path (default: .jpg for paths without '
                        'an extension, e.g. InstaVariety\'s <video>/<frame>)')
    parser.add_argument('--strip-prefix', default='',
                        help='remove this prefix from image paths (absolute paths)')
    parser.add_argument('--bbox-source', default='keypoints', choices=('keypoints', 'file'),
                        help='keypoints: tight box of the 2D joints (default, as for 3DPW); '
                        'file: mmhuman3d\'s bbox_xywh as stored (already enlarged)')
    parser.add_argument('--overwrite', action='store_true', help='replace OUT if it exists')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        path = convert_humandata_file(args.humandata, args.out, args.dataset,
                                      overwrite=args.overwrite, image_root=args.image_root,
                                      image_suffix=args.image_suffix,
                                      strip_prefix=args.strip_prefix,
                                      bbox_source=args.bbox_source)
    except (OSError, KeyError, ValueError, UnsafePickleError, CorruptFileError) as err:
        print(f'error: {err.args[0] if isinstance(err, KeyError) else err}', file=sys.stderr)
        return 1
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
