"""Generate the stand-in body model: a mannequin with SMPL's array layout (NOT SMPL).

    python tools/make_body_model.py OUT_DIR [--seed 0] [--force]

Writes OUT_DIR/SMPL_NEUTRAL_STANDIN.npz, OUT_DIR/J_regressor_h36m_STANDIN.npy and a
README.txt. ``SMPLBodyModel(OUT_DIR)`` picks the stand-in up when no real SMPL file is there
(and warns that its numbers are not SMPL numbers). See unspat_mm/datasets/synthetic/standin_body.py.
"""
import argparse
import sys
import time

from unspat_mm.datasets.synthetic.standin_body import make_standin_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='folder to write the stand-in into (created if absent)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the small details (posedirs, beta2..9 amplitudes)')
    parser.add_argument('--force', action='store_true', help='overwrite existing stand-in files')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        paths = make_standin_files(args.out_dir, seed=args.seed, force=args.force)
    except (FileExistsError, NotADirectoryError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'Wrote the stand-in body model (NOT SMPL) in {time.perf_counter() - start:.1f} s:')
    for path in paths:
        print(f'  {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
