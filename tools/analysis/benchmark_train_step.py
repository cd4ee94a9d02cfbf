"""Where a training step goes: data pipeline, backbone, neck, head, loss + backward,
optimizer step, per config, in one process.

For each config, the tool builds the model, the optimizer wrapper and the training
dataloader as ``tools/train.py`` would (no work dir, no hooks, no checkpoint), and
runs ``model.train_step`` on real batches. It prints, per config, the median over the
timed steps of

* data: one batch through the dataset and its pipeline, in this process
  (``num_workers=0``; in training the worker processes do this beside the model);
* preprocess, backbone, neck, head: the forward of each part (forward hooks); the
  head's includes its IK, not the losses;
* loss+backward: the rest of ``train_step`` (losses, their backward, gradient
  clipping);
* optimizer: ``optimizer.step`` (hooks on the optimizer);
* step: the whole ``train_step`` (everything but data).

Several configs are measured in interleaved rounds, so that a shared machine slows
them alike. Times are wall-clock milliseconds with ``--threads`` torch threads.

Usage::

    python tools/analysis/benchmark_train_step.py configs/unspat_synthetic.py
    python tools/analysis/benchmark_train_step.py configs/unspat_synthetic.py \\
        configs/ablations/unspat_synthetic_s2b.py --threads 1 --steps 20
    python tools/analysis/benchmark_train_step.py configs/unspat_synthetic.py \\
        --cfg-options model.head.depth_bins=16
"""
import argparse
import statistics
import time
from collections import defaultdict

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from unspat_mm.datasets.synthetic import prepare_config_body_model
from unspat_mm.registry import MODELS

PARTS = ('data', 'preprocess', 'backbone', 'neck', 'head', 'loss+backward', 'optimizer',
         'step')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+', help='config files to compare')
    parser.add_argument('--steps', type=int, default=10, help='timed steps per config')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps per config')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch\'s own choice)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config, as in tools/train.py')
    return parser.parse_args()


class _Timed:
    """One config's model, optimizer and batches, with timers on its parts."""

    def __init__(self, path: str, cfg_options: dict):
        cfg = Config.fromfile(path)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        init_default_scope(cfg.get('default_scope', 'unspat_mm'))
        self.name = path
        prepare_config_body_model(cfg)
        self.model = MODELS.build(cfg.model)
        self.model.train()
        self.optim_wrapper = build_optim_wrapper(self.model, cfg.optim_wrapper)
        loader_cfg = cfg.train_dataloader.copy()
        loader_cfg.update(num_workers=0, persistent_workers=False)
        self.loader = Runner.build_dataloader(loader_cfg, seed=0)
        self.batches = iter(self.loader)
        self.times = defaultdict(list)
        self._start = {}
        parts = dict(preprocess=self.model.data_preprocessor, backbone=self.model.backbone,
                     neck=self.model.neck, head=self.model.head)
        for part, module in parts.items():
            if module is not None:
                module.register_forward_pre_hook(self._starter(part))
                module.register_forward_hook(self._stopper(part))
        optimizer = self.optim_wrapper.optimizer
        optimizer.register_step_pre_hook(lambda *_: self._starter('optimizer')())
        optimizer.register_step_post_hook(lambda *_: self._stopper('optimizer')())

    def _starter(self, part):
        def start(*_):
            self._start[part] = time.perf_counter()
        return start

    def _stopper(self, part):
        def stop(*_):
            self._step_parts[part] += time.perf_counter() - self._start[part]
        return stop

    def _next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self, record: bool) -> None:
        self._step_parts = defaultdict(float)
        start = time.perf_counter()
        batch = self._next_batch()
        data_time = time.perf_counter() - start
        start = time.perf_counter()
        self.model.train_step(batch, self.optim_wrapper)
        step_time = time.perf_counter() - start
        if not record:
            return
        parts = dict(self._step_parts)
        parts['loss+backward'] = step_time - sum(parts.values())
        parts.update(data=data_time, step=step_time)
        for part, seconds in parts.items():
            self.times[part].append(seconds * 1e3)


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [_Timed(path, args.cfg_options) for path in args.configs]
    for _ in range(args.warmup):
        for run in runs:
            run.step(record=False)
    for _ in range(args.steps):
        for run in runs:
            run.step(record=True)
    print(f'\nmedian ms over {args.steps} steps, {torch.get_num_threads()} torch thread(s)')
    header = f'| config | {" | ".join(PARTS)} |'
    print(header)
    print('|---|' + '---:|' * len(PARTS))
    for run in runs:
        cells = [f'{statistics.median(run.times[p]):.1f}' if run.times[p] else '–'
                 for p in PARTS]
        print(f'| {run.name} | {" | ".join(cells)} |')


if __name__ == '__main__':
    main()
