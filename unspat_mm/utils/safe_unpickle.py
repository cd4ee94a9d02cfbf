"""Read pickles and ``.npz`` object arrays without letting the file run code.

Public data arrives as pickles (3DPW's ``sequenceFiles/*.pkl``, Python-2 pickles) or as
``.npz`` files whose dict-valued entries are pickled object arrays (mmhuman3d's HumanData).
``pickle.load`` / ``np.load(allow_pickle=True)`` would call whatever callable the file
names (``os.system``, ``builtins.eval``, ...). The loaders here resolve names through an
allow-list holding only what numpy arrays, dtypes, scalars and plain containers need, and
refuse every other name before anything is called:

- numpy: ``ndarray``, ``dtype``, ``_reconstruct`` / ``scalar`` (pickle protocols 0-4, under
  both ``numpy.core`` (numpy < 2, Python-2 files) and ``numpy._core``) and
  ``_frombuffer`` (protocol 5);
- builtins: ``set``, ``frozenset``, ``bytes``, ``bytearray``, ``complex`` (under
  ``__builtin__`` in Python-2 pickles): data types, called only to rebuild their values;
- ``_codecs.encode`` with a latin-1 codec only: how protocol 2 stores ``bytes``.

dict / list / tuple / str / int / float / bool / None need no names at all.
"""
import codecs
import pickle
import zipfile
from typing import Any, Dict, Optional

import numpy as np
from numpy.lib import format as npy_format

__all__ = ['UnsafePickleError', 'CorruptFileError', 'RestrictedUnpickler', 'safe_loads',
           'safe_load_pickle', 'load_npz_safely']

_LATIN1 = codecs.lookup('latin1').name


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a class or function outside the allow-list (nothing was called)."""


class CorruptFileError(ValueError):
    """The file is truncated or corrupt, or is not the container it claims to be."""


def _latin1_encode(obj, encoding='latin1', errors='strict'):
    """``_codecs.encode`` restricted to latin-1: protocol 2 stores ``bytes`` as
    ``_codecs.encode(str, 'latin1')``; other codecs are not needed for arrays."""
    if not isinstance(obj, str) or codecs.lookup(encoding).name != _LATIN1 or errors != 'strict':
        raise UnsafePickleError(f'refusing _codecs.encode({type(obj).__name__}, {encoding!r}, '
                                f'{errors!r}): only latin-1 encoding of str is allowed')
    return obj.encode('latin1')


def _numpy_names() -> Dict[tuple, Any]:
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    numeric = np._core.numeric if hasattr(np, '_core') else np.core.numeric
    names = {('numpy', 'ndarray'): np.ndarray, ('numpy', 'dtype'): np.dtype}
    for core in ('numpy.core', 'numpy._core'):
        names[(f'{core}.multiarray', '_reconstruct')] = multiarray._reconstruct
        names[(f'{core}.multiarray', 'scalar')] = multiarray.scalar
        names[(f'{core}.numeric', '_frombuffer')] = numeric._frombuffer
    return names


# (module, name) -> the object it resolves to; nothing outside this table is imported
ALLOWED_NAMES: Dict[tuple, Any] = {
    **_numpy_names(),
    **{(module, t.__name__): t for module in ('builtins', '__builtin__')
       for t in (set, frozenset, bytes, bytearray, complex)},
    ('_codecs', 'encode'): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose :meth:`find_class` admits only
    :data:`ALLOWED_NAMES` (plus ``extra_names`` of a subclass).

    Args:
        file (BinaryIO): binary file object.
        source (str, optional): what to call the data in errors. Defaults to None
            (``file.name``).
        encoding (str): how to decode Python-2 ``str`` objects; ``'latin1'`` is what
            numpy arrays pickled by Python 2 need. Defaults to ``'latin1'``.

    Subclasses extend the allow-list with ``extra_names`` ({(module, name): object}) and
    reword the refusal with ``allowed_description``.
    """
    extra_names: Dict[tuple, Any] = {}
    allowed_description = ('only numpy arrays, dtypes, scalars and plain containers '
                           '(dict, list, tuple, set, str, bytes, numbers) are allowed')

    def __init__(self, file, *, source: Optional[str] = None, encoding: str = 'latin1'):
        super().__init__(file, encoding=encoding)
        self.source = source if source is not None else getattr(file, 'name', '<bytes>')

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in self.extra_names:
            return self.extra_names[key]
        if key in ALLOWED_NAMES:
            return ALLOWED_NAMES[key]
        raise UnsafePickleError(
            f'refusing to unpickle {module}.{name} from {self.source}: '
            f'{self.allowed_description}. The file may be malicious, or it is not the '
            'file this loader expects.')

    def persistent_load(self, pid):
        raise UnsafePickleError(f'refusing a persistent id in {self.source}: '
                                f'{self.allowed_description}')


def _load(unpickler: RestrictedUnpickler) -> Any:
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except Exception as err:  # EOFError, UnpicklingError, ValueError from numpy, ...
        raise CorruptFileError(
            f'{unpickler.source}: cannot unpickle (truncated or corrupt file?): '
            f'{type(err).__name__}: {err}') from err


def safe_loads(data: bytes, source: str = '<bytes>', encoding: str = 'latin1') -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`.

    Raises:
        UnsafePickleError: the pickle names anything outside the allow-list.
        CorruptFileError: the data is truncated or not a valid pickle.
    """
    import io
    return _load(RestrictedUnpickler(io.BytesIO(data), source=source, encoding=encoding))


def safe_load_pickle(path: str, encoding: str = 'latin1',
                     unpickler_class: type = RestrictedUnpickler) -> Any:
    """Unpickle the file at ``path`` with :class:`RestrictedUnpickler` (or a subclass of
    it with a wider allow-list); errors name ``path``, see :func:`safe_loads`."""
    if not issubclass(unpickler_class, RestrictedUnpickler):
        raise TypeError(f'unpickler_class must subclass RestrictedUnpickler, got {unpickler_class}')
    with open(path, 'rb') as f:
        return _load(unpickler_class(f, source=str(path), encoding=encoding))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> np.ndarray:
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise CorruptFileError(f'{source}: unsupported .npy format version {version}')
        if dtype.hasobject:
            value = safe_loads(f.read(), source=source)
            if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
                raise CorruptFileError(
                    f'{source}: the pickled payload is a {type(value).__name__} of shape '
                    f'{getattr(value, "shape", None)}, but the header says an array of shape '
                    f'{tuple(shape)}')
            return value
    with zf.open(info) as f:  # plain arrays: numpy's own reader, pickles disallowed
        return npy_format.read_array(f, allow_pickle=False)


def load_npz_safely(path: str) -> Dict[str, np.ndarray]:
    """Read every array of an ``.npz``, object arrays included, without ``allow_pickle``.

    Plain members are read by numpy with ``allow_pickle=False``; object-dtype members
    (e.g. HumanData's ``smpl`` / ``meta`` dicts, stored as 0-d object arrays) have their
    header parsed here and their pickled payload read by :class:`RestrictedUnpickler`.

    Returns:
        dict[str, np.ndarray]: member name (without ``.npy``) -> array; a dict stored by
        ``np.savez`` comes back as a 0-d object array (``.item()`` gives the dict).

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptFileError: not a zip archive, or a member is truncated/corrupt (the error
            names the file and the member).
        UnsafePickleError: an object member names anything outside the allow-list.
    """
    path = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as err:
        raise CorruptFileError(f'{path}: not a readable .npz archive (truncated or corrupt?): '
                               f'{type(err).__name__}: {err}') from err
    arrays = {}
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith('.npy'):
                continue
            key = info.filename[:-len('.npy')]
            source = f'{path} (member {key!r})'
            try:
                arrays[key] = _read_member(zf, info, source)
            except (UnsafePickleError, CorruptFileError):
                raise
            except Exception as err:  # BadZipFile (CRC), EOFError, ValueError (short data)
                raise CorruptFileError(f'{source}: cannot be read (truncated or corrupt?): '
                                       f'{type(err).__name__}: {err}') from err
    return arrays
