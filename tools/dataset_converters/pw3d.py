"""Convert 3DPW's official sequence pickles into unspat-mm annotation files.

    python tools/dataset_converters/pw3d.py DATA_ROOT OUT_DIR
        [--splits train validation test] [--overwrite] [--no-check-images]

DATA_ROOT is the unpacked 3DPW download (``sequenceFiles/``, ``imageFiles/``); it is only
read. Writes ``OUT_DIR/pw3d_<split>.npz`` (format ``unspat-mm-video-v1``, see
``unspat_mm/datasets/annotation_format.py``; conventions in
``unspat_mm/datasets/converters/pw3d.py``). The pickles are read with a restricted
unpickler that admits only numpy arrays and plain containers. Existing outputs are kept
unless ``--overwrite``; OUT_DIR must not lie inside DATA_ROOT.
"""
import argparse
import sys

from unspat_mm.datasets.converters.pw3d import PW3D_SPLITS, convert_pw3d
from unspat_mm.utils.safe_unpickle import CorruptFileError, UnsafePickleError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data_root', help='3DPW folder holding sequenceFiles/ and imageFiles/')
    parser.add_argument('out_dir', help='where pw3d_<split>.npz are written')
    parser.add_argument('--splits', nargs='+', default=list(PW3D_SPLITS), choices=PW3D_SPLITS)
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    parser.add_argument('--no-check-images', action='store_true',
                        help='do not require every frame\'s image under imageFiles/')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        written = convert_pw3d(args.data_root, args.out_dir, args.splits,
                               overwrite=args.overwrite, check_images=not args.no_check_images)
    except (OSError, KeyError, ValueError, UnsafePickleError, CorruptFileError) as err:
        print(f'error: {err.args[0] if isinstance(err, KeyError) else err}', file=sys.stderr)
        return 1
    for split, path in written.items():
        print(f'{split}: wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
