"""Throughput of the batched twist-and-swing IK on CPU.

Usage::

    python tools/analysis/benchmark_ik.py [--batch-sizes 1 1024] [--threads 1] [--repeats 20]

Prints a markdown table: batch size, mode (forward, or forward+backward through
``theta`` and ``local_rotmats`` to the keypoints and twist), ms per call, poses per second.
The inputs are random natural poses on a random rest skeleton; the IK's cost does not
depend on their values.
"""
import argparse
import math
import time

import torch

import unspat_mm  # noqa: F401
from unspat_mm.models.utils import (axis_angle_to_matrix, forward_kinematics,
                                    twist_angles_from_pose, twist_swing_ik)
from unspat_mm.structures.skeleton import HYBRIK_PARENTS


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 1024])
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: leave torch default)')
    parser.add_argument('--repeats', type=int, default=20, help='timed calls per row')
    parser.add_argument('--dtype', choices=['float32', 'float64'], default='float32')
    return parser.parse_args()


def make_inputs(batch, dtype, seed=0):
    """Random rest skeleton (bones ~0.1-0.2 m), pose, and the IK inputs it implies."""
    g = torch.Generator().manual_seed(seed)
    bones = 0.1 + 0.1 * torch.rand(batch, 29, 3, generator=g, dtype=dtype)
    bones = bones * torch.randn(batch, 29, 3, generator=g, dtype=dtype).sign()
    rest = torch.zeros(batch, 29, 3, dtype=dtype)
    for k in range(1, 29):
        rest[:, k] = rest[:, HYBRIK_PARENTS[k]] + bones[:, k]
    axis = torch.randn(batch, 24, 3, generator=g, dtype=dtype)
    angle = torch.rand(batch, 24, 1, generator=g, dtype=dtype) * 1.2
    angle[:, 0] *= math.pi / 1.2
    rot = axis_angle_to_matrix(axis / axis.norm(dim=-1, keepdim=True) * angle)
    joints, _ = forward_kinematics(rot, rest)
    phi = twist_angles_from_pose(rot, rest)
    return joints - joints[:, :1], torch.stack([phi.cos(), phi.sin()], -1), rest


def time_call(fn, repeats):
    for _ in range(3):  # warm-up
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    rows = []
    for batch in args.batch_sizes:
        keypoints, twist, rest = make_inputs(batch, dtype)

        def forward():
            with torch.no_grad():
                twist_swing_ik(keypoints, twist, rest)

        kp_grad = keypoints.clone().requires_grad_()
        tw_grad = twist.clone().requires_grad_()

        def forward_backward():
            rot, theta = twist_swing_ik(kp_grad, tw_grad, rest)
            (theta.sum() + rot.sum()).backward()

        for mode, fn in (('forward', forward), ('forward+backward', forward_backward)):
            seconds = time_call(fn, args.repeats)
            rows.append((batch, mode, seconds * 1e3, batch / seconds))

    print(f'twist_swing_ik on CPU ({torch.get_num_threads()} threads, {args.dtype}, '
          f'torch {torch.__version__})\n')
    print('| batch | mode | ms / call | poses / s |')
    print('|---:|---|---:|---:|')
    for batch, mode, ms, rate in rows:
        print(f'| {batch} | {mode} | {ms:.2f} | {rate:,.0f} |')


if __name__ == '__main__':
    main()
