"""Write pickles as Python 2 wrote them (3DPW's ``sequenceFiles`` are such files).

Python 2's ``pickle.dump(obj, f, 2)`` stores ``str`` / bytes as 8-bit strings
(``SHORT_BINSTRING`` / ``BINSTRING`` opcodes), which Python 3 can only read with an
``encoding`` (``'latin1'`` for numpy's raw array bytes), and names numpy's reconstructor
``numpy.core.multiarray._reconstruct``. :func:`dumps_py2` reproduces both with Python 3's
pure-Python pickler, so fixtures exercise the same opcodes and names as the real files.
"""
import pickle
import struct

__all__ = ['dumps_py2']


def _save_8bit(self, obj):
    data = obj.encode('latin1') if isinstance(obj, str) else bytes(obj)
    if len(data) < 256:
        self.write(pickle.SHORT_BINSTRING + struct.pack('<B', len(data)) + data)
    else:
        self.write(pickle.BINSTRING + struct.pack('<i', len(data)) + data)
    self.memoize(obj)


class _Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = _save_8bit
    dispatch[bytes] = _save_8bit


def dumps_py2(obj) -> bytes:
    """``obj`` pickled with protocol 2 the way Python 2 + numpy < 2 wrote it: strings and
    bytes as 8-bit strings (ASCII/latin-1 text only), ``builtins`` as ``__builtin__``
    and numpy's reconstructor under ``numpy.core.multiarray``."""
    import io
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2, fix_imports=True).dump(obj)
    # protocol 2 names globals as text lines ("c<module>\n<name>\n"): renaming is safe
    return buf.getvalue().replace(b'cnumpy._core.multiarray\n', b'cnumpy.core.multiarray\n')
