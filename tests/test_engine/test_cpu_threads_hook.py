"""The model's CPU threads leave the data workers their cores."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from unspat_mm.engine.hooks import CPUThreadsHook, cpu_threads_hook
from unspat_mm.engine.hooks.cpu_threads_hook import threads_beside_workers


@pytest.mark.parametrize('workers, world_size, cores, expected', [
    (1, 1, 2, 1),    # the embedded default on the 2-core machine
    (0, 1, 2, 2),    # no workers: every core
    (1, 2, 2, 1),    # two processes, one worker each: still at least one thread
    (2, 1, 16, 14),
    (1, 2, 16, 7),
])
def test_threads_are_the_cores_left_by_the_workers(workers, world_size, cores, expected):
    assert threads_beside_workers(workers, world_size, cores) == expected


def _runner(device='cpu', train_workers=1, test_workers=0):
    model = torch.nn.Linear(2, 2, device=device)
    cfg = Config(dict(train_dataloader=dict(num_workers=train_workers),
                      test_dataloader=dict(num_workers=test_workers)))
    return SimpleNamespace(model=model, cfg=cfg, logger=logging.getLogger('test'))


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(cpu_threads_hook, 'usable_cores', lambda: 4)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_hook_sets_threads_per_loop_and_restores_them(four_cores):
    before = torch.get_num_threads()
    hook, runner = CPUThreadsHook(), _runner(train_workers=1, test_workers=3)
    hook.before_train(runner)
    assert torch.get_num_threads() == 3
    hook.after_train(runner)
    assert torch.get_num_threads() == before
    hook.before_test(runner)
    assert torch.get_num_threads() == 1
    hook.after_test(runner)
    assert torch.get_num_threads() == before


def test_an_explicit_count_wins_over_the_rule(four_cores):
    hook = CPUThreadsHook(num_threads=2)
    hook.before_train(_runner(train_workers=0))
    assert torch.get_num_threads() == 2


def test_omp_num_threads_and_non_cpu_models_are_left_alone(four_cores, monkeypatch):
    torch.set_num_threads(2)
    CPUThreadsHook().before_train(_runner(device='meta', train_workers=0))
    assert torch.get_num_threads() == 2
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    CPUThreadsHook().before_train(_runner(train_workers=0))
    assert torch.get_num_threads() == 2


def test_zero_threads_are_refused():
    with pytest.raises(ValueError, match='num_threads must be >= 1'):
        CPUThreadsHook(num_threads=0)
