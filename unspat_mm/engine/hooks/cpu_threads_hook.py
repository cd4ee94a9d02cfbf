"""Leave the data workers their cores when a model runs on the CPU."""
import os
from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from unspat_mm.registry import HOOKS


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else all of the machine's."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_beside_workers(num_workers: int, world_size: int = 1,
                           cores: Optional[int] = None) -> int:
    """Torch threads for one of ``world_size`` processes on ``cores`` cores, each
    process feeding from ``num_workers`` data workers busy on the same cores."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, world_size) - num_workers)


@HOOKS.register_module()
class CPUThreadsHook(Hook):
    """On the CPU, run the model with the cores the data workers leave free.

    Torch's default uses every core for the model, and the dataloader's workers
    (busy rendering clips, drawing backgrounds, cropping) then compete with it, and
    every step waits for the slowest of them. The hook sets
    ``torch.set_num_threads(cores // world_size - num_workers)`` (at least 1) for
    training and testing, from the loop's own dataloader config, and restores the
    previous count afterwards.

    It changes nothing when the model is on a GPU, or when ``OMP_NUM_THREADS`` is
    set (the user's choice wins), or with ``num_threads`` given explicitly (then
    that count is used).

    Args:
        num_threads (int, optional): a fixed thread count instead of the rule above.
            Defaults to None.
    """

    priority = 'VERY_HIGH'

    def __init__(self, num_threads: Optional[int] = None):
        if num_threads is not None and num_threads < 1:
            raise ValueError(f'CPUThreadsHook: num_threads must be >= 1, got {num_threads}')
        self.num_threads = num_threads
        self._previous = None

    def before_train(self, runner) -> None:
        self._set(runner, 'train_dataloader')

    def after_train(self, runner) -> None:
        self._restore()

    def before_test(self, runner) -> None:
        self._set(runner, 'test_dataloader')

    def after_test(self, runner) -> None:
        self._restore()

    def _set(self, runner, loader_key: str) -> None:
        model_device = next(runner.model.parameters()).device
        if model_device.type != 'cpu':
            return
        if self.num_threads is None and 'OMP_NUM_THREADS' in os.environ:
            runner.logger.info('CPUThreadsHook: OMP_NUM_THREADS is set; torch keeps '
                               f'{torch.get_num_threads()} thread(s).')
            return
        threads = self.num_threads
        if threads is None:
            num_workers = (runner.cfg.get(loader_key) or {}).get('num_workers', 0)
            threads = threads_beside_workers(num_workers, get_world_size())
        self._previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        runner.logger.info(f'CPUThreadsHook: {threads} torch thread(s) on {usable_cores()} '
                           f'core(s) for the {loader_key.split("_")[0]} loop.')

    def _restore(self) -> None:
        if self._previous is not None:
            torch.set_num_threads(self._previous)
            self._previous = None
