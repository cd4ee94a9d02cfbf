import builtins
import io
import os
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

from unspat_mm.testing import dumps_py2
from unspat_mm.utils.safe_unpickle import (CorruptFileError, UnsafePickleError, load_npz_safely,
                                           safe_load_pickle, safe_loads)


def _sample():
    return {'poses': [np.arange(12.).reshape(3, 4), np.ones((2, 72), np.float32)],
            'valid': np.array([True, False, True]), 'K': np.eye(3), 'ids': np.arange(5),
            'names': np.array(['a', 'bc']), 'scalar': np.float64(2.5), 'n': 3, 'x': 1.5,
            'sequence': 'courtyard', 'raw': b'\x00\xff', 'tags': {'a', 'b'},
            'frozen': frozenset([1, 2]), 'pair': (None, True), 'z': 1 + 2j,
            'no_bytes': b'', 'buf': bytearray(b'ab'), 'nested': {'d': [1, {'e': 2}]},
            'obj': np.array({'betas': np.zeros(10)}), 'empty': np.zeros((0, 3))}


def _assert_same(a, b):
    assert type(a) is type(b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray))
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype == object:
            _assert_same(a.item(), b.item())
        else:
            np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize('protocol', range(6))
def test_round_trip_every_protocol(protocol):
    data = _sample()
    _assert_same(safe_loads(pickle.dumps(data, protocol=protocol)), data)


def test_python2_pickle_needs_latin1_and_reads(tmp_path):
    data = {k: v for k, v in _sample().items() if k not in ('raw', 'names', 'buf', 'no_bytes')}
    blob = dumps_py2(data)
    assert b'cnumpy.core.multiarray\n_reconstruct' in blob and b'numpy._core' not in blob
    with pytest.raises(UnicodeDecodeError):  # why 3DPW needs encoding='latin1'
        pickle.loads(blob)
    path = tmp_path / 'seq.pkl'
    path.write_bytes(blob)
    _assert_same(safe_load_pickle(str(path)), data)


class _Custom:
    def __init__(self):
        self.value = 1


class _Exploit:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    cmd = f'touch {marker}'
    return {
        'os.system': _Exploit(os.system, cmd),
        'subprocess.check_call': _Exploit(subprocess.check_call, ['touch', str(marker)]),
        'builtins.eval': _Exploit(builtins.eval, f'open({str(marker)!r}, "w")'),
        'builtins.exec': _Exploit(builtins.exec, f'open({str(marker)!r}, "w")'),
        'builtins.getattr': _Exploit(getattr, 'text', 'upper'),
        '_Custom': _Custom(),
    }


@pytest.mark.parametrize('protocol', [0, 2, 5])
@pytest.mark.parametrize('name', list(_payloads('x')))
def test_refuses_code_and_classes(tmp_path, protocol, name):
    marker = tmp_path / 'ran'
    path = tmp_path / 'evil.pkl'
    # hidden inside a plausible 3DPW dict, after real arrays
    path.write_bytes(pickle.dumps({'poses': [np.zeros((2, 72))], 'x': _payloads(marker)[name]},
                                  protocol=protocol))
    # protocols 0/1 build plain objects through copy_reg._reconstructor: refused first
    refused = '(_Custom|_reconstructor)' if name == '_Custom' else name.rsplit('.', 1)[-1]
    with pytest.raises(UnsafePickleError, match=rf'refusing to unpickle \S*{refused} from '
                       rf'{path}: only numpy arrays'):
        safe_load_pickle(str(path))
    assert not marker.exists()
    assert isinstance(UnsafePickleError('x'), pickle.UnpicklingError)


def test_refuses_inside_object_array_and_persistent_ids(tmp_path):
    marker = tmp_path / 'ran'
    inner = np.empty(1, object)
    inner[0] = _Exploit(os.system, f'touch {marker}')
    with pytest.raises(UnsafePickleError, match='posix.system|nt.system'):
        safe_loads(pickle.dumps({'a': inner}))
    assert not marker.exists()

    class Persistent(pickle.Pickler):
        def persistent_id(self, obj):
            return 'ref' if isinstance(obj, str) and obj == 'outside' else None

    buf = io.BytesIO()
    Persistent(buf, protocol=2).dump({'k': 'outside'})
    with pytest.raises(UnsafePickleError, match='persistent id in <bytes>'):
        safe_loads(buf.getvalue())


def test_codecs_encode_only_latin1():
    assert safe_loads(pickle.dumps(b'\x00\xfe', protocol=2)) == b'\x00\xfe'
    blob = pickle.dumps(b'abc', protocol=2).replace(b'latin1', b'rot13_')
    with pytest.raises(UnsafePickleError, match="only latin-1"):
        safe_loads(blob)


def test_truncated_and_garbage(tmp_path):
    blob = pickle.dumps(_sample(), protocol=2)
    path = tmp_path / 'cut.pkl'
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(CorruptFileError, match=rf'{path}: cannot unpickle \(truncated or '
                       r'corrupt file\?\)'):
        safe_load_pickle(str(path))
    with pytest.raises(CorruptFileError, match='junk.bin: cannot unpickle'):
        safe_loads(b'\x80\x02not a pickle at all', source='junk.bin')


def _write_npz_with_object(path, member_value, compressed=True):
    arrays = dict(image_path=np.array(['a/0.jpg', 'a/1.jpg']), bbox_xywh=np.ones((2, 5)),
                  smpl={'betas': np.arange(20.).reshape(2, 10), 'gender': ['m', 'f']},
                  cam=np.array([{'K': np.eye(3)}, {'K': 2 * np.eye(3)}], dtype=object),
                  flag=True, extra=member_value)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


@pytest.mark.parametrize('compressed', [True, False])
def test_npz_object_members(tmp_path, compressed):
    path = tmp_path / 'hd.npz'
    arrays = _write_npz_with_object(path, np.float32(3), compressed)
    loaded = load_npz_safely(str(path))
    assert sorted(loaded) == sorted(arrays)
    np.testing.assert_array_equal(loaded['image_path'], arrays['image_path'])
    assert loaded['image_path'].dtype.kind == 'U' and loaded['flag'].shape == ()
    smpl = loaded['smpl'].item()
    np.testing.assert_array_equal(smpl['betas'], arrays['smpl']['betas'])
    assert smpl['gender'] == ['m', 'f']
    assert loaded['cam'].shape == (2, ) and loaded['cam'][1]['K'][0, 0] == 2
    with np.load(path, allow_pickle=False) as plain:  # the plain members agree with numpy
        np.testing.assert_array_equal(plain['bbox_xywh'], loaded['bbox_xywh'])
        with pytest.raises(ValueError, match='allow_pickle'):
            plain['smpl']


def test_npz_malicious_member_refused(tmp_path):
    marker = tmp_path / 'ran'
    evil = np.empty((), object)
    evil[()] = {'global_orient': _Exploit(os.system, f'touch {marker}')}
    path = tmp_path / 'evil.npz'
    _write_npz_with_object(path, evil)
    with pytest.raises(UnsafePickleError,
                       match=rf"system from {path} \(member 'extra'\): only numpy arrays"):
        load_npz_safely(str(path))
    assert not marker.exists()


def test_npz_truncated_or_corrupt(tmp_path):
    path = tmp_path / 'hd.npz'
    _write_npz_with_object(path, np.zeros(3), compressed=False)
    blob = path.read_bytes()
    cut = tmp_path / 'cut.npz'
    cut.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(CorruptFileError, match=rf'{cut}: not a readable .npz archive'):
        load_npz_safely(str(cut))
    # flip a byte inside the pickled 'smpl' member: the zip's CRC check catches it
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo('smpl.npy')
    bad = bytearray(blob)
    bad[info.header_offset + 30 + len('smpl.npy') + 200] ^= 0xFF
    corrupt = tmp_path / 'corrupt.npz'
    corrupt.write_bytes(bytes(bad))
    with pytest.raises(CorruptFileError, match=rf"{corrupt} \(member 'smpl'\)"):
        load_npz_safely(str(corrupt))
