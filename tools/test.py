"""Evaluate an unspat-mm checkpoint (mmpose's command line).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--dump preds.npz]
                         [--baseline] [--cfg-options k=v ...] [--launcher pytorch]

``--dump`` writes per-frame predictions, ground truth and errors (MeshMetric's
``dump_path``); ``--baseline`` prints the metrics beside those of predicting the
training set's mean pose for every frame.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.runner import Runner

import unspat_mm  # noqa: F401
from unspat_mm.datasets.synthetic import prepare_config_body_model
from unspat_mm.engine import trust_checkpoints
from unspat_mm.evaluation import mean_pose_baseline
from unspat_mm.registry import DATASETS
from unspat_mm.utils import setup_cpu_distributed, teardown_distributed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a UNSPAT model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the evaluation logs')
    parser.add_argument('--dump', metavar='FILE.npz',
                        help='write per-frame predictions, ground truth and errors')
    parser.add_argument('--baseline', action='store_true',
                        help='also print the mean-pose baseline (needs train_dataloader)')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow full unpickling of CHECKPOINT (only if you trust it)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args) -> Config:
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.dump:
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
            else [cfg.test_evaluator]
        for evaluator in evaluators:
            if evaluator.get('type') in ('MeshMetric', 'unspat_mm.MeshMetric'):
                evaluator.dump_path = args.dump
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return setup_cpu_distributed(cfg)


def format_results(metrics: dict, baseline: dict = None) -> str:
    names = ('MPJPE', 'PA-MPJPE', 'MPVPE', 'Accel')
    found = {n: v for k, v in metrics.items() for n in names if k.split('/')[-1] == n}
    lines = ['| metric (mm; Accel mm/frame^2) | model |' + (' mean pose |' if baseline else ''),
             '|---|---:|' + ('---:|' if baseline else '')]
    for name in names:
        if name not in found:
            continue
        row = f'| {name} | {found[name]:.1f} |'
        if baseline:
            row += f' {baseline[name]:.1f} |' if name in baseline else ' – |'
        lines.append(row)
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoints([args.checkpoint])
    cfg = merge_args(Config.fromfile(args.config), args)
    prepare_config_body_model(cfg)  # the embedded default's stand-in body, if it asks
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    baseline = None
    if args.baseline and is_main_process():
        baseline = mean_pose_baseline(DATASETS.build(cfg.train_dataloader.dataset),
                                      DATASETS.build(cfg.test_dataloader.dataset))
    if is_main_process():
        print(format_results(metrics, baseline), flush=True)
    teardown_distributed()
    return metrics, baseline


if __name__ == '__main__':
    main()
