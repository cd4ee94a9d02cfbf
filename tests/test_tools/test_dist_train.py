"""``tools/dist_train.sh CONFIG 2`` on CPU (gloo) against one process with the same
global batch: the same samples, the same logged losses, the same weights."""
import json
import os
import socket
import subprocess
import sys

import torch

from tools import train as train_tool
from unspat_mm.engine import load_weights_only

CONFIG = 'configs/debug/unspat_synthetic_dist_check.py'
STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _options(root, model_dir, batch_size):
    return [
        f'model.head.body_model.model_dir={model_dir}', f'body_model_dir={model_dir}',
        f'standin_body_model_dir={model_dir}',
        *[f'{evaluator}.body_model.model_dir={model_dir}'
          for evaluator in ('val_evaluator', 'test_evaluator.0')],
        *[f'{split}_dataloader.dataset.{key}' for split in ('train', 'val', 'test')
          for key in (f'cache_dir={root}/data', 'preset=tiny', f'body_model_dir={model_dir}')],
        *[f'{split}_dataloader.{key}' for split in ('train', 'val', 'test')
          for key in ('num_workers=0', 'persistent_workers=False')],
        f'train_dataloader.batch_size={batch_size}',
        f'train_cfg.max_iters={STEPS}', f'default_hooks.checkpoint.interval={STEPS}',
        'default_hooks.logger.interval=1', f'param_scheduler.0.T_max={STEPS}',
        f'param_scheduler.0.end={STEPS}',
    ]


def _logged_losses(work_dir):
    (run, ) = [d for d in os.listdir(work_dir) if os.path.isdir(os.path.join(work_dir, d))]
    with open(os.path.join(work_dir, run, 'vis_data', 'scalars.json')) as f:
        rows = [json.loads(line) for line in f]
    return {row['step']: {k: v for k, v in row.items() if k.startswith('loss')}
            for row in rows if 'loss' in row}


def test_two_processes_match_one_process_at_equal_global_batch(tmp_path, standin_model_dir):
    # one process, batch 4 (this also generates the tiny synthetic set once)
    train_tool.main([CONFIG, '--work-dir', f'{tmp_path}/single', '--cfg-options',
                     *_options(tmp_path, standin_model_dir, 4)])
    # two processes over gloo, batch 2 each
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env['PATH']
    done = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', f'{tmp_path}/dist',
         '--cfg-options', *_options(tmp_path, standin_model_dir, 2)],
        env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]

    single, dist = _logged_losses(tmp_path / 'single'), _logged_losses(tmp_path / 'dist')
    assert sorted(single) == sorted(dist) == list(range(1, STEPS + 1))
    for step in single:
        print(f'step {step}: one process {single[step]["loss"]:.6f}, '
              f'two processes {dist[step]["loss"]:.6f}')
        for name, value in single[step].items():
            assert abs(dist[step][name] - value) <= 1e-5 * max(1., abs(value)), (step, name)

    a = load_weights_only(str(tmp_path / f'single/iter_{STEPS}.pth'))['state_dict']
    b = load_weights_only(str(tmp_path / f'dist/iter_{STEPS}.pth'))['state_dict']
    assert a.keys() == b.keys()
    moved = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    print(f'largest parameter difference after {STEPS} steps: {moved:.2e}')
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-4, msg=key)
