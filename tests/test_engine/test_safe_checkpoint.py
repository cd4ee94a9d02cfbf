"""Checkpoints under torch's weights_only=True: saved safely, resumed exactly,
foreign ones refused with the opt-in named."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner

import unspat_mm  # noqa: F401  (registers the hook and the local loader)
from unspat_mm.engine.checkpoint import (TRUSTED_ENV, from_weights_only_safe,
                                         load_weights_only, to_weights_only_safe)


class NoisyRegressor(BaseModel):
    """Draws from torch's global stream in every step (dropout), like UNSPAT's
    synthetic-artifact masks do."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, inputs, targets, mode='tensor'):
        inputs = torch.stack(inputs) if isinstance(inputs, list) else inputs
        targets = torch.stack(targets) if isinstance(targets, list) else targets
        pred = self.linear(self.dropout(inputs)).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((pred - targets)**2).mean())
        return pred


def _dataset(n=10):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return [dict(inputs=x[i], targets=x[i].sum()) for i in range(n)]


def _runner(work_dir, max_iters, resume=False, load_from=None, hooks=True):
    torch.manual_seed(0)  # the model is built here, before the runner seeds
    return Runner(
        model=NoisyRegressor(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_dataset(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1000),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='unspat_mm.SafeCheckpointHook')] if hooks else [],
        randomness=dict(seed=7), resume=resume, load_from=load_from,
        default_scope='unspat_mm', experiment_name=f'exp_{os.path.basename(work_dir)}')


def test_round_trip_of_numpy_and_history_buffers():
    meta = dict(a=np.arange(5, dtype=np.int64), b=np.float32(2.5), names=np.array(['x', 'y']),
                hist=HistoryBuffer([1.0, 2.0], [1, 1], max_length=10), nested=[(np.ones(2), 3)])
    back = from_weights_only_safe(to_weights_only_safe(meta))
    np.testing.assert_array_equal(back['a'], meta['a'])
    assert back['a'].dtype == np.int64 and back['b'] == 2.5 and type(back['b']) is float
    assert back['names'].tolist() == ['x', 'y']
    assert isinstance(back['hist'], HistoryBuffer)
    np.testing.assert_array_equal(back['hist'].data[0], [1.0, 2.0])
    assert back['hist'].max_length == 10
    np.testing.assert_array_equal(back['nested'][0][0], np.ones(2))


def test_saved_checkpoint_loads_with_plain_weights_only(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    # torch's own loader, weights_only=True, nothing allow-listed:
    ckpt = torch.load(tmp_path / 'iter_2.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 2 and 'rng_state' in ckpt
    # mmengine's loader (replaced by ours) gives back HistoryBuffers:
    from mmengine.runner.checkpoint import _load_checkpoint
    loaded = _load_checkpoint(str(tmp_path / 'iter_2.pth'))
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


def test_resume_reproduces_uninterrupted_run(tmp_path):
    full = _runner(tmp_path / 'full', max_iters=6)
    full.train()
    _runner(tmp_path / 'cut', max_iters=4).train()  # "interrupted" after iter 4
    resumed = _runner(tmp_path / 'cut', max_iters=6, resume=True)
    resumed.train()
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=1e-7)
    assert resumed.iter == 6
    # and the comparison can fail: without the hook the random streams differ
    _runner(tmp_path / 'nohook', max_iters=4, hooks=False).train()
    plain = _runner(tmp_path / 'nohook', max_iters=6, resume=True, hooks=False)
    with pytest.raises(pickle.UnpicklingError, match='--trust-checkpoint'):
        plain.train()


def test_foreign_checkpoint_refused_then_opted_in(tmp_path, monkeypatch):
    path = tmp_path / 'foreign.pth'
    # A checkpoint as stock mmengine writes it: HistoryBuffer objects inside.
    torch.save(dict(state_dict={}, message_hub=dict(loss=HistoryBuffer([1.0], [1]))), path)
    with pytest.raises(pickle.UnpicklingError) as info:
        load_weights_only(str(path))
    message = str(info.value)
    assert 'HistoryBuffer' in message and '--trust-checkpoint' in message
    assert TRUSTED_ENV in message and 'make_checkpoint_safe.py' in message
    monkeypatch.setenv(TRUSTED_ENV, str(path))
    assert isinstance(load_weights_only(str(path))['message_hub']['loss'], HistoryBuffer)


def test_plain_numpy_in_foreign_checkpoint_is_admitted(tmp_path):
    path = tmp_path / 'np.pth'
    torch.save(dict(w=torch.ones(2), meta=dict(sigmas=np.linspace(0, 1, 3),
                                               seed=np.int64(3))), path)
    loaded = load_weights_only(str(path))
    np.testing.assert_allclose(loaded['meta']['sigmas'], [0, 0.5, 1])
    assert loaded['meta']['seed'] == 3


def test_make_checkpoint_safe_tool(tmp_path):
    from tools.misc.make_checkpoint_safe import main
    src, dst = tmp_path / 'foreign.pth', tmp_path / 'safe.pth'
    torch.save(dict(state_dict=dict(w=torch.arange(3.)),
                    message_hub=dict(loss=HistoryBuffer([1.0, 0.5], [1, 1]))), src)
    before = src.read_bytes()
    with pytest.raises(pickle.UnpicklingError):
        main([str(src), str(dst)])  # without --trust it stays refused
    assert main([str(src), str(dst), '--trust']) == 0
    assert src.read_bytes() == before  # the user's file is untouched
    safe = torch.load(dst, weights_only=True)
    torch.testing.assert_close(safe['state_dict']['w'], torch.arange(3.))
    hist = load_weights_only(str(dst))
    assert from_weights_only_safe(hist)['message_hub']['loss'].mean() == 0.75
    with pytest.raises(SystemExit):
        main([str(src), str(dst), '--trust'])  # refuses to overwrite without --force
