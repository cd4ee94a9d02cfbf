import importlib.util
import io
import os
import os.path as osp
import pickle
import shutil
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from unspat_mm.models.body import SMPLBodyModel

TOOL = Path(__file__).parents[2] / 'tools' / 'convert_smpl_pkl.py'


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('convert_smpl_pkl', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def fake_chumpy():
    """A fake ``chumpy`` package in sys.modules, only while the fixture is written, so the
    pickle names chumpy's classes as the official files do."""
    ch, reordering = types.ModuleType('chumpy.ch'), types.ModuleType('chumpy.reordering')

    class Ch:
        def __init__(self, x):
            self.x = x

        def __getstate__(self):  # what chumpy pickles: its __dict__ minus caches
            return {'x': self.x, '_dirty_vars': {'x'}, '_itr': None, '_depends_on_deps': {},
                    '_make_dense': False, '_make_sparse': False}

    class Select:  # a chumpy expression: no stored array, only operands
        def __init__(self, a, idxs):
            self.a, self.idxs = a, idxs

    for cls, module in ((Ch, ch), (Select, reordering)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    names = {'chumpy': types.ModuleType('chumpy'), 'chumpy.ch': ch,
             'chumpy.reordering': reordering}
    sys.modules.update(names)
    try:
        yield Ch, Select
    finally:
        for name in names:
            del sys.modules[name]


def write_official_like_pkl(path, arrays, derived_key=None):
    """Mimic the official file: chumpy shapedirs / v_template, sparse J_regressor, extra
    keys (priors, strings, a chumpy expression under 'J'), Python-2 protocol."""
    with fake_chumpy() as (Ch, Select):
        data = dict(
            v_template=Ch(arrays['v_template']), shapedirs=Ch(arrays['shapedirs']),
            posedirs=arrays['posedirs'], weights=arrays['weights'], f=arrays['f'],
            kintree_table=arrays['kintree_table'],
            J_regressor=sp.csc_matrix(arrays['J_regressor']),
            J_regressor_prior=sp.csc_matrix(arrays['J_regressor']),
            weights_prior=arrays['weights'], vert_sym_idxs=np.arange(6890),
            J=Select(Ch(arrays['v_template']), np.arange(24)), bs_style='lbs',
            bs_type='lrotmin', pose_training_info={'data': 'fixture'})
        if derived_key:
            data[derived_key] = Select(Ch(arrays[derived_key]), np.arange(3))
        with open(path, 'wb') as f:
            pickle.dump(data, f, protocol=2)


@pytest.fixture(scope='module')
def arrays(standin_model_dir):
    with np.load(osp.join(standin_model_dir, 'SMPL_NEUTRAL_STANDIN.npz')) as data:
        return {k: data[k] for k in data.files}


def test_round_trip(tool, arrays, standin_model_dir, tmp_path):
    pkl = tmp_path / 'SMPL_NEUTRAL.pkl'
    write_official_like_pkl(pkl, arrays)
    assert b'chumpy.ch' in pkl.read_bytes() and 'chumpy' not in sys.modules
    model_dir = tmp_path / 'models'
    model_dir.mkdir()
    out = model_dir / 'SMPL_NEUTRAL.npz'
    assert tool.main([str(pkl), str(out)]) == 0
    with np.load(out) as converted:
        assert sorted(converted.files) == sorted(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(converted[key], value, err_msg=key)
    shutil.copy(osp.join(standin_model_dir, 'J_regressor_h36m_STANDIN.npy'),
                model_dir / 'J_regressor_h36m.npy')
    body = SMPLBodyModel(str(model_dir))
    assert not body.is_standin
    reference = SMPLBodyModel(standin_model_dir)
    gen = torch.Generator().manual_seed(0)
    pose, betas = 0.5 * torch.randn(2, 72, generator=gen), torch.randn(2, 10, generator=gen)
    # same arrays bit for bit (above); float32 BLAS results may still differ in the last
    # bit with the buffers' alignment (seen on an AMD EPYC: 1.2e-7 m), hence 1e-6 m
    for key, value in body(pose, betas).items():
        torch.testing.assert_close(value, reference(pose, betas)[key], atol=1e-6, rtol=0)
    torch.testing.assert_close(body(torch.zeros(1, 72), torch.zeros(1, 10))['vertices'][0],
                               torch.tensor(arrays['v_template'], dtype=torch.float32))


def test_layer_explains_chumpy_pickles(arrays, tmp_path):
    write_official_like_pkl(tmp_path / 'SMPL_NEUTRAL.pkl', arrays)
    with pytest.raises(ValueError, match='chumpy.*tools/convert_smpl_pkl.py'):
        SMPLBodyModel(str(tmp_path), allow_pickle=True)


def test_refuses_other_code(tool, tmp_path):
    marker = tmp_path / 'ran'

    class Exploit:
        def __reduce__(self):
            return os.system, (f'touch {marker}', )

    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'v_template': Exploit()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r'refusing to unpickle .*system'):
        tool.load_smpl_pkl(str(path))
    assert not marker.exists()
    assert tool.main([str(path), str(tmp_path / 'out.npz')]) == 1
    assert not (tmp_path / 'out.npz').exists()


def test_py2_names_resolve(tool):
    unpickler = tool.SMPLUnpickler(io.BytesIO())
    assert unpickler.find_class('numpy.core.multiarray', '_reconstruct') is \
        np._core.multiarray._reconstruct
    assert unpickler.find_class('__builtin__', 'set') is set
    old_sparse = unpickler.find_class('scipy.sparse.csc', 'csc_matrix')
    assert issubclass(old_sparse, tool.SparseMatrix) and old_sparse.build is sp.csc_matrix


def test_chumpy_expression_in_a_needed_key(tool, arrays, tmp_path):
    write_official_like_pkl(tmp_path / 'expr.pkl', arrays, derived_key='weights')
    with pytest.raises(ValueError, match=r'`weights` is a chumpy chumpy.reordering.Select'):
        tool.load_smpl_pkl(str(tmp_path / 'expr.pkl'))


def test_cli_guards(tool, arrays, tmp_path, capsys):
    pkl = tmp_path / 'in.pkl'
    write_official_like_pkl(pkl, arrays)
    out = tmp_path / 'out.npz'
    out.write_bytes(b'user data')
    assert tool.main([str(pkl), str(out)]) == 1
    assert '--force' in capsys.readouterr().err and out.read_bytes() == b'user data'
    assert tool.main([str(pkl), str(out), '--force']) == 0
    assert tool.main([str(pkl), str(tmp_path / 'out.pkl')]) == 1
