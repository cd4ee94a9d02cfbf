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
them alike. Times are wall-clock milliseconds with ``--threads`` torch threads; the last
column is each config's step time over the first config's.

``--random-inputs`` times the model without any data: every step gets a fresh batch of
random clips of the config's input (uint8 frames of ``input_size``, or float16 feature
maps of the neck's ``in_channels`` x ``feat_size`` for a model without backbone) with
random targets, so that configs whose data you do not have can be compared, e.g. the
paper's training from images with the frozen backbone against training from cached
features (``--standin-body-model``: the stand-in mannequin instead of SMPL)::

    python tools/analysis/benchmark_train_step.py configs/unspat_3dpw.py \
        configs/unspat_3dpw_features.py --random-inputs --standin-body-model \
        --batch-size 2

Usage::

    python tools/analysis/benchmark_train_step.py configs/unspat_synthetic.py
    python tools/analysis/benchmark_train_step.py configs/unspat_synthetic.py \\
        configs/ablations/unspat_synthetic_s2b.py --threads 1 --steps 20
    python tools/analysis/benchmark_train_step.py configs/unspat_synthetic.py \\
        --cfg-options model.head.depth_bins=16
"""
import argparse
import itertools
import statistics
import tempfile
import time
from collections import defaultdict

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

from unspat_mm.datasets.synthetic import ensure_standin_body_model, prepare_config_body_model
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
    parser.add_argument('--random-inputs', action='store_true',
                        help='random clips and targets of the config\'s shapes instead of '
                        'its training data (no data column)')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='clips per step (default: the config\'s train batch size)')
    parser.add_argument('--standin-body-model', action='store_true',
                        help='build the head\'s body model from the stand-in mannequin, '
                        'written to a temporary folder (not SMPL; timing only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every config, as in tools/train.py')
    return parser.parse_args()


def random_batch(cfg: Config, model, batch_size: int, generator) -> dict:
    """``batch_size`` random clips of the shape ``model`` reads, with random targets, as
    the training dataloader would give them (a dict of lists)."""
    neck = cfg.model.neck
    if model.backbone is None:  # cached feature maps, stored as float16
        shape = (neck.num_frames, neck.in_channels, *neck.feat_size)
        inputs = [torch.randn(shape, generator=generator).half() for _ in range(batch_size)]
    else:
        width, height = cfg.get('input_size', (256, 256))
        inputs = [torch.randint(0, 256, (neck.num_frames, 3, height, width),
                                generator=generator, dtype=torch.uint8)
                  for _ in range(batch_size)]
    samples = [BaseDataElement(
        keypoints3d=torch.randn(29, 3, generator=generator) * .2,
        keypoints3d_valid=torch.ones(29),
        keypoints2d=torch.rand(29, 2, generator=generator) - .5,
        keypoints2d_valid=torch.ones(29), theta=torch.randn(72, generator=generator) * .2,
        betas=torch.randn(10, generator=generator) * .5, smpl_valid=torch.tensor(1.))
        for _ in range(batch_size)]
    return dict(inputs=inputs, data_samples=samples)


class _Timed:
    """One config's model, optimizer and batches, with timers on its parts."""

    def __init__(self, path: str, args):
        cfg = Config.fromfile(path)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        if args.standin_body_model:
            cfg.model.head.body_model.model_dir = args.standin_dir
        init_default_scope(cfg.get('default_scope', 'unspat_mm'))
        self.name = path
        prepare_config_body_model(cfg)
        self.model = MODELS.build(cfg.model)
        self.model.train()
        self.optim_wrapper = build_optim_wrapper(self.model, cfg.optim_wrapper)
        batch_size = args.batch_size or cfg.train_dataloader.batch_size
        if args.random_inputs:
            generator = torch.Generator().manual_seed(0)
            self.loader = None
            self.batches = (random_batch(cfg, self.model, batch_size, generator)
                            for _ in itertools.count())
        else:
            loader_cfg = cfg.train_dataloader.copy()
            loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=batch_size)
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
        parts.update(step=step_time)
        if self.loader is not None:
            parts.update(data=data_time)
        for part, seconds in parts.items():
            self.times[part].append(seconds * 1e3)


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as standin_dir:
        if args.standin_body_model:
            ensure_standin_body_model(standin_dir)
        args.standin_dir = standin_dir
        runs = [_Timed(path, args) for path in args.configs]
    measure_and_report(runs, args)


def measure_and_report(runs, args):
    for _ in range(args.warmup):
        for run in runs:
            run.step(record=False)
    for _ in range(args.steps):
        for run in runs:
            run.step(record=True)
    print(f'\nmedian ms over {args.steps} steps, {torch.get_num_threads()} torch thread(s)')
    header = f'| config | {" | ".join(PARTS)} | step / first |'
    print(header)
    print('|---|' + '---:|' * (len(PARTS) + 1))
    first = statistics.median(runs[0].times['step'])
    for run in runs:
        cells = [f'{statistics.median(run.times[p]):.1f}' if run.times[p] else '–'
                 for p in PARTS]
        ratio = statistics.median(run.times['step']) / first
        print(f'| {run.name} | {" | ".join(cells)} | {ratio:.2f} |')


if __name__ == '__main__':
    main()
