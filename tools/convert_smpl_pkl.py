"""Convert an official SMPL ``.pkl`` once into a plain ``.npz`` (no chumpy, no pickle).

    python tools/convert_smpl_pkl.py SMPL_NEUTRAL.pkl data/body_models/SMPL_NEUTRAL.npz

The official files (e.g. ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl`` renamed
``SMPL_NEUTRAL.pkl``) are Python-2 pickles holding chumpy arrays, which do not unpickle on
current Python/numpy, and a scipy-sparse ``J_regressor``. This tool reads them without
chumpy through a restricted unpickler: it admits numpy arrays, scipy sparse matrices, plain
containers and chumpy classes, whose pickled state is captured (a stored chumpy array keeps
its values under ``x``), and refuses every other class or function, so the file cannot run
code. The ``.npz`` holds the 7 arrays SMPL needs (``J_regressor`` densified), checked
against SMPL's layout; ``SMPLBodyModel`` loads it.
"""
import argparse
import copyreg
import os.path as osp
import pickle
import sys

import numpy as np
import scipy.sparse as sp

from unspat_mm.models.body.smpl_layer import validate_body_model_arrays
from unspat_mm.utils.safe_unpickle import RestrictedUnpickler, safe_load_pickle

SMPL_KEYS = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table',
             'f')
_SPARSE_MODULES = ('scipy.sparse', 'scipy.sparse.csc', 'scipy.sparse._csc', 'scipy.sparse.csr',
                   'scipy.sparse._csr')


class ChumpyObject:
    """What a chumpy object unpickles to here: its class name and its pickled state."""
    chumpy_class = 'chumpy.ch.Ch'
    state = None

    def __setstate__(self, state):
        self.state = state

    def to_array(self, key):
        x = self.state.get('x') if isinstance(self.state, dict) else None
        if x is None:
            raise ValueError(
                f'`{key}` is a chumpy {self.chumpy_class} expression, not a stored array, and '
                'cannot be evaluated without chumpy. On a machine where chumpy imports, save '
                '`np.array(value)` for it and convert that file instead.')
        return np.asarray(x)


class SparseMatrix:
    """A pickled scipy csc/csr matrix, rebuilt from its arrays (the class layout of the
    scipy that wrote the official files is not today's)."""
    build = sp.csc_matrix
    state = None

    def __setstate__(self, state):
        self.state = state

    def to_array(self, key):
        st = self.state
        shape = st.get('_shape', st.get('shape'))
        return self.build((st['data'], st['indices'], st['indptr']), shape=shape).toarray()


_CHUMPY_CLASSES = {}


def _chumpy_class(module, name):
    full = f'{module}.{name}'
    if full not in _CHUMPY_CLASSES:
        _CHUMPY_CLASSES[full] = type(name, (ChumpyObject, ), {'chumpy_class': full})
    return _CHUMPY_CLASSES[full]


class SMPLUnpickler(RestrictedUnpickler):
    """Unpickles SMPL model files only: numpy arrays and containers (the shared allow-list
    of :mod:`unspat_mm.utils.safe_unpickle`), plus chumpy and scipy sparse classes, which
    are captured instead of imported, and ``copyreg._reconstructor`` to build them."""
    extra_names = {(module, '_reconstructor'): copyreg._reconstructor
                   for module in ('copyreg', 'copy_reg')}
    extra_names.update({(module, 'object'): object for module in ('builtins', '__builtin__')})
    allowed_description = ('an SMPL model file holds only numpy arrays, scipy sparse matrices '
                           'and chumpy arrays. Is this an official SMPL .pkl?')

    def find_class(self, module, name):
        if module == 'chumpy' or module.startswith('chumpy.'):
            return _chumpy_class(module, name)
        if module in _SPARSE_MODULES and name in ('csc_matrix', 'csr_matrix'):
            return type(name, (SparseMatrix, ), {'build': getattr(sp, name)})
        return super().find_class(module, name)


def load_smpl_pkl(path):
    """Read an SMPL ``.pkl`` without chumpy: ``dict`` of the 7 arrays (float64 for the float
    ones, ``J_regressor`` dense)."""
    data = safe_load_pickle(path, encoding='latin1', unpickler_class=SMPLUnpickler)
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a dict of arrays, found {type(data).__name__}')
    missing = [k for k in SMPL_KEYS if k not in data]
    if missing:
        raise ValueError(f'{path}: missing {missing}; found {sorted(data)}')
    arrays = {}
    for key in SMPL_KEYS:
        value = data[key]
        if isinstance(value, (ChumpyObject, SparseMatrix)):
            value = value.to_array(key)
        if not isinstance(value, np.ndarray):
            raise ValueError(f'{path}: `{key}` is a {type(value).__name__}, not an array')
        arrays[key] = value.astype(np.float64) if value.dtype.kind == 'f' else value
    return arrays


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pkl', help='official SMPL .pkl (e.g. SMPL_NEUTRAL.pkl)')
    parser.add_argument('out', help='output .npz (e.g. data/body_models/SMPL_NEUTRAL.npz)')
    parser.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.out.endswith('.npz'):
        print(f'error: OUT must end in .npz, got {args.out}', file=sys.stderr)
        return 1
    if osp.exists(args.out) and not args.force:
        print(f'error: {args.out} exists; pass --force to overwrite it', file=sys.stderr)
        return 1
    try:
        arrays = validate_body_model_arrays(load_smpl_pkl(args.pkl), source=args.pkl)
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    np.savez(args.out, **arrays)
    print(f'Wrote {args.out}:')
    for key, value in arrays.items():
        print(f'  {key:14s} {str(value.shape):16s} {value.dtype}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
