"""Checkpoints that load with torch's ``weights_only=True`` left on.

torch >= 2.6 unpickles checkpoints with ``weights_only=True``: only tensors, plain
containers and allow-listed classes. A stock mmengine checkpoint fails that check
because its message hub and meta hold numpy arrays and ``HistoryBuffer`` objects
(whose unpickling needs ``builtins.getattr``, which would re-open the hole).

unspat-mm therefore

* saves checkpoints that need nothing beyond tensors and containers:
  :class:`~unspat_mm.engine.hooks.SafeCheckpointHook` passes them through
  :func:`to_weights_only_safe` before they are written and through
  :func:`from_weights_only_safe` after they are read back;
* replaces mmengine's loader for local files by :func:`load_from_local_weights_only`,
  which keeps ``weights_only=True``, admits numpy's array/dtype/scalar
  reconstruction (data only, no code) for checkpoints written elsewhere, and
  refuses anything else with an error that names what is inside and the explicit,
  per-file opt-in.

The opt-in: list the file (absolute paths, ``os.pathsep``-separated) in
``UNSPAT_MM_TRUSTED_CHECKPOINTS``, or pass ``--trust-checkpoint FILE`` to the tools,
or convert it once with ``tools/misc/make_checkpoint_safe.py``. Only trust files
whose origin you trust: full unpickling can run arbitrary code.
"""
import os
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any, Callable, Iterable

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

TRUSTED_ENV = 'UNSPAT_MM_TRUSTED_CHECKPOINTS'
_NDARRAY_TAG = '__unspat_ndarray__'
_HISTORY_TAG = '__unspat_history_buffer__'


def model_state_dict(checkpoint: dict) -> dict:
    """The weights of a loaded checkpoint: its ``state_dict`` (or the dict itself, for a
    bare state dict), with the ``module.`` prefix of a DDP-wrapped model removed.

    Args:
        checkpoint (dict): what ``torch.load`` / mmengine's loaders returned.

    Returns:
        dict: parameter and buffer names -> tensors.
    """
    state = checkpoint.get('state_dict', checkpoint)
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def to_weights_only_safe(obj: Any) -> Any:
    """Recursively replace numpy arrays/scalars and HistoryBuffers by tensors,
    Python numbers and tagged dicts, so that ``torch.load(weights_only=True)``
    reads the result. Inverse: :func:`from_weights_only_safe`."""
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_HISTORY_TAG: dict(log_history=to_weights_only_safe(log),
                                   count_history=to_weights_only_safe(count),
                                   max_length=int(obj.max_length))}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in 'biufc':
            return {_NDARRAY_TAG: torch.from_numpy(np.ascontiguousarray(obj)).clone()}
        return {_NDARRAY_TAG: [to_weights_only_safe(x) for x in obj.tolist()],
                'dtype': obj.dtype.str if obj.dtype.kind != 'O' else 'object'}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        items = ((k, to_weights_only_safe(v)) for k, v in obj.items())
        return OrderedDict(items) if isinstance(obj, OrderedDict) else dict(items)
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(to_weights_only_safe(v) for v in obj)
    return obj


def from_weights_only_safe(obj: Any) -> Any:
    """Undo :func:`to_weights_only_safe` (numpy arrays and HistoryBuffers come back)."""
    if isinstance(obj, dict):
        if _HISTORY_TAG in obj:
            state = from_weights_only_safe(obj[_HISTORY_TAG])
            return HistoryBuffer(state['log_history'], state['count_history'],
                                 state['max_length'])
        if _NDARRAY_TAG in obj:
            value = obj[_NDARRAY_TAG]
            if isinstance(value, torch.Tensor):
                return value.numpy()
            items = [from_weights_only_safe(v) for v in value]
            dtype = obj.get('dtype', 'object')
            return np.array(items, dtype=object if dtype == 'object' else dtype)
        items = ((k, from_weights_only_safe(v)) for k, v in obj.items())
        return OrderedDict(items) if isinstance(obj, OrderedDict) else dict(items)
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return type(obj)(from_weights_only_safe(v) for v in obj)
    return obj


def _numpy_data_globals() -> list:
    """numpy's reconstruction entry points: they rebuild arrays, dtypes and scalars
    from raw bytes and cannot call anything else."""
    core = np._core if hasattr(np, '_core') else np.core
    dtype_classes = [getattr(np.dtypes, name) for name in dir(np.dtypes)
                     if name.endswith('DType')]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *dtype_classes]


def _trusted_files() -> set:
    value = os.environ.get(TRUSTED_ENV, '')
    return {osp.realpath(p) for p in value.split(os.pathsep) if p}


def trust_checkpoints(paths: Iterable[str]) -> None:
    """Opt these files (and only these) into full unpickling for this process."""
    trusted = _trusted_files() | {osp.realpath(osp.expanduser(p)) for p in paths}
    os.environ[TRUSTED_ENV] = os.pathsep.join(sorted(trusted))


def load_weights_only(filename: str, map_location=None) -> Any:
    """``torch.load`` with ``weights_only=True`` plus numpy's data classes only.

    Raises:
        pickle.UnpicklingError: the file needs more; the message names the globals
            it asks for and the per-file opt-in.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename!r} does not exist.')
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if osp.realpath(filename) in _trusted_files():
            print_log(f'Fully unpickling {filename}, which you listed as trusted '
                      f'({TRUSTED_ENV}).', logger='current', level=30)
            return torch.load(filename, map_location=map_location, weights_only=False)
        try:
            needed = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # not a zip checkpoint: torch cannot list them
            needed = ['(unlisted: legacy format)']
        raise pickle.UnpicklingError(
            f'Checkpoint {filename!r} cannot be loaded safely: besides tensors it holds '
            f'objects that need full unpickling ({", ".join(needed)}), which can run '
            'arbitrary code. If you trust where the file comes from, opt it in explicitly: '
            f'pass `--trust-checkpoint {filename}` to tools/train.py or tools/test.py, or '
            f'add it to the {TRUSTED_ENV} environment variable, or convert it once with '
            f'`python tools/misc/make_checkpoint_safe.py {filename} OUT.pth --trust`.'
        ) from error


def load_from_local_weights_only(filename: str, map_location=None) -> Any:
    """mmengine's local-file checkpoint loader, replaced (see module docstring)."""
    return from_weights_only_safe(load_weights_only(filename, map_location))


def register_weights_only_loader() -> Callable:
    """Make mmengine load local files through :func:`load_from_local_weights_only`."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only,
                                     force=True)
    return load_from_local_weights_only
