"""Write checkpoints that torch's ``weights_only=True`` loader accepts, and resume
every random stream that training draws from."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from unspat_mm.engine.checkpoint import from_weights_only_safe, to_weights_only_safe
from unspat_mm.registry import HOOKS

_RNG_KEY = 'rng_state'


def capture_rng_state() -> dict:
    """Python, numpy and torch (CPU and, when present, CUDA) generator states as
    tensors and plain Python values."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(legacy=False),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return to_weights_only_safe(state)


def restore_rng_state(state: dict) -> None:
    state = from_weights_only_safe(state)
    random.setstate(_as_python_state(state['python']))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _as_python_state(state):
    # random.setstate wants the exact nested tuples getstate gave.
    version, internal, gauss = state
    return version, tuple(internal), gauss


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Keeps checkpoints loadable with ``torch.load(weights_only=True)``.

    Before a checkpoint is saved, the message hub's and meta's numpy values and
    ``HistoryBuffer`` objects become tensors, Python numbers and tagged dicts, and
    the random generators' states are stored under ``'rng_state'``. After a
    checkpoint is loaded the conversion is undone, and when resuming the random
    states are restored, so that an interrupted and resumed run draws the same
    random numbers as an uninterrupted one. This holds when data transforms draw
    their randomness from per-sample seeds (ours do) or in seeded workers, since
    mmengine replays the skipped batches of the interrupted epoch on resume.

    Add it to any config: ``custom_hooks = [dict(type='unspat_mm.SafeCheckpointHook')]``
    (our ``configs/_base_/default_runtime.py`` does).
    """

    priority = 'VERY_LOW'  # after every other hook has added what it saves

    def before_train(self, runner) -> None:
        # A DataLoader without a generator of its own draws its workers' base seed
        # from the global torch stream whenever an iterator is created, and a
        # resumed run creates one at a different moment than an uninterrupted run.
        # mmengine reseeds workers from the config seed anyway, so give the loader a
        # private stream and keep the global one for the model.
        loader = runner.train_dataloader
        if getattr(loader, 'generator', None) is None:
            loader.generator = torch.Generator().manual_seed(int(runner.seed or 0))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[_RNG_KEY] = capture_rng_state()
        for key in list(checkpoint):
            if key not in ('state_dict', 'optimizer'):
                checkpoint[key] = to_weights_only_safe(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # The local loader (unspat_mm.engine.checkpoint) already undid the
        # conversion; other loaders may not have.
        for key in list(checkpoint):
            checkpoint[key] = from_weights_only_safe(checkpoint[key])
        rng_state = checkpoint.pop(_RNG_KEY, None)
        if rng_state is not None and getattr(runner, '_resume', False):
            restore_rng_state(rng_state)
