"""Throughput of the batched twist-and-swing IK on CPU, and its root solve under noise.

Usage::

    python tools/analysis/benchmark_ik.py [--sections timing noise] [--batch-sizes 1 1024]
        [--threads 1] [--repeats 20] [--samples 2000] [--noise-mm 0 5 10 20 40]

``timing`` prints a markdown table: batch size, mode (forward, or forward+backward through
``theta`` and ``local_rotmats`` to the keypoints and twist), ms per call, poses per second.
Its inputs are random natural poses on a random rest skeleton (:func:`make_inputs`); the
IK's cost does not depend on their values.

``noise`` (the noise sweep) prints, per noise level and root solve, the root error (mean
and 90th percentile, degrees) and the re-posed MPJPE (mm): the IK's rotations pushed back
through forward kinematics on the rest skeleton, compared with the noise-free joints, both
root-relative, mean over the 29 joints. Inputs (:func:`make_noisy_inputs`): human-like rest
skeletons of the stand-in body with random betas (a mannequin, not SMPL; its pelvis and
hips are within a few cm of SMPL's), natural poses (angles up to 1.2 rad per joint, any
root orientation), the noise-free twist, and isotropic Gaussian noise of std ``sigma`` per
coordinate added to all 29 keypoints before making them root-relative. Root solves:
``procrustes`` (the IK's default, :func:`~unspat_mm.models.utils.root_rotation`), ``frame``
(the IK's previous root, an orthonormal frame from the hip line and the spine bone) and
``hybrik-svd`` (HybrIK's ``batch_get_pelvis_orient_svd``: Kabsch of the three bone vectors
from the pelvis), the latter two written out below and given to the IK as ``root_rotmat``.
"""
import argparse
import functools
import math
import tempfile
import time

import torch

import unspat_mm  # noqa: F401
from unspat_mm.models.utils import (any_perpendicular, axis_angle_to_matrix, forward_kinematics,
                                    geodesic_distance, safe_normalize, twist_angles_from_pose,
                                    twist_swing_ik)
from unspat_mm.structures.skeleton import HYBRIK_PARENTS, ROOT_CHILDREN


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 1024])
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: leave torch default)')
    parser.add_argument('--repeats', type=int, default=20, help='timed calls per row')
    parser.add_argument('--dtype', choices=['float32', 'float64'], default='float32')
    parser.add_argument('--sections', nargs='+', choices=['timing', 'noise'],
                        default=['timing', 'noise'], help='what to print')
    parser.add_argument('--samples', type=int, default=2000, help='poses per noise level')
    parser.add_argument('--noise-mm', type=float, nargs='+', default=[0., 5., 10., 20., 40.],
                        help='keypoint noise std per coordinate, mm')
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


@functools.lru_cache(maxsize=1)
def standin_body():
    """The stand-in body model (seed 0), built once in a temporary folder."""
    # the stand-in's only import here (its module has moved before)
    from unspat_mm.datasets.synthetic.standin_body import make_standin_files
    from unspat_mm.models.body import SMPLBodyModel
    with tempfile.TemporaryDirectory() as model_dir:
        make_standin_files(model_dir, seed=0)
        return SMPLBodyModel(model_dir)


def standin_rest_joints29(betas):
    """(B, 10) betas -> (B, 29, 3) rest joints of the stand-in body (metres)."""
    with torch.no_grad():
        return standin_body().rest_joints29(betas)


def make_noisy_inputs(batch, noise_mm, dtype, seed=0):
    """Noise-free joints and rotations, noisy root-relative keypoints, twist, rest skeleton.

    Returns:
        dict: ``joints`` (B, 29, 3) noise-free posed joints, ``rotmats`` (B, 24, 3, 3),
        ``keypoints`` (B, 29, 3) root-relative noisy keypoints (metres), ``twist``
        (B, 23, 2) noise-free, ``rest`` (B, 29, 3); one seed gives the same poses at every
        noise level, and noise of the same direction.
    """
    g = torch.Generator().manual_seed(seed)
    rest = standin_rest_joints29(torch.randn(batch, 10, generator=g)).to(dtype)
    axis = torch.randn(batch, 24, 3, generator=g, dtype=dtype)
    angle = torch.rand(batch, 24, 1, generator=g, dtype=dtype) * 1.2
    angle[:, 0] = torch.rand(batch, 1, generator=g, dtype=dtype) * math.pi
    rot = axis_angle_to_matrix(axis / axis.norm(dim=-1, keepdim=True) * angle)
    joints, _ = forward_kinematics(rot, rest)
    phi = twist_angles_from_pose(rot, rest)
    noisy = joints + noise_mm * 1e-3 * torch.randn(joints.shape, generator=g, dtype=dtype)
    return dict(joints=joints, rotmats=rot, keypoints=noisy - noisy[:, :1],
                twist=torch.stack([phi.cos(), phi.sin()], -1), rest=rest)


def frame_root(keypoints, rest):
    """The IK's previous root: ``F(keypoints) F(rest)^T`` for the orthonormal frame ``F``
    whose first axis bisects the hip line and spine-bone directions, third their normal."""

    def frame(joints):
        left, right, spine = ROOT_CHILDREN
        ex, ey = torch.tensor([1., 0., 0.]), torch.tensor([0., 1., 0.])
        a = safe_normalize(joints[:, right] - joints[:, left], fallback=ex)
        b = safe_normalize(joints[:, spine] - joints[:, 0], fallback=ey)
        u = safe_normalize(a + b, fallback=a)
        w = safe_normalize(torch.linalg.cross(a, b), fallback=any_perpendicular(u))
        return torch.stack([u, torch.linalg.cross(w, u), w], dim=-1)

    return frame(keypoints) @ frame(rest).transpose(-1, -2)


def hybrik_svd_root(keypoints, rest):
    """HybrIK's evaluation root: S = sum over the pelvis's children of rest bone (x) target
    bone (bones from the pelvis, not normalised), SVD, R = V diag(1, 1, det) U^T; an all-zero
    S gives the identity."""
    children = list(ROOT_CHILDREN)
    rest_bones = rest[:, children] - rest[:, :1]
    target_bones = keypoints[:, children] - keypoints[:, :1]
    cov = rest_bones.transpose(1, 2) @ target_bones
    u, _, vh = torch.linalg.svd(cov)
    v = vh.transpose(1, 2)
    det = torch.linalg.det(v @ u.transpose(1, 2))
    fix = torch.diag_embed(torch.stack([torch.ones_like(det), torch.ones_like(det), det], -1))
    rot = v @ fix @ u.transpose(1, 2)
    zero = (cov.abs().sum(dim=(1, 2)) == 0)[:, None, None]
    return torch.where(zero, torch.eye(3, dtype=rot.dtype), rot)


ROOT_SOLVES = dict(procrustes=None, frame=frame_root, hybrik_svd=hybrik_svd_root)


def noise_sweep(samples, noise_levels_mm, dtype):
    """Rows ``(noise_mm, solve, root mean deg, root p90 deg, MPJPE mm)``."""
    rows = []
    for noise_mm in noise_levels_mm:
        inputs = make_noisy_inputs(samples, noise_mm, dtype)
        rest, keypoints = inputs['rest'], inputs['keypoints']
        truth = inputs['joints'] - inputs['joints'][:, :1]
        for name, solve in ROOT_SOLVES.items():
            with torch.no_grad():
                root = None if solve is None else solve(keypoints, rest)
                rot, _ = twist_swing_ik(keypoints, inputs['twist'], rest, root_rotmat=root)
                joints, _ = forward_kinematics(rot, rest)
            root_err = torch.rad2deg(geodesic_distance(rot[:, 0], inputs['rotmats'][:, 0]))
            mpjpe = ((joints - joints[:, :1]) - truth).norm(dim=-1).mean() * 1e3
            rows.append((noise_mm, name, root_err.mean().item(),
                         root_err.double().quantile(0.9).item(), mpjpe.item()))
    return rows


def time_call(fn, repeats):
    for _ in range(3):  # warm-up
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def timing(args, dtype):
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


def _fmt(x, digits):
    """Fixed point, or scientific for values that would print as zero (noise-free rows)."""
    return f'{x:.{digits}f}' if x == 0 or x >= 10**-digits else f'{x:.1e}'


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if 'timing' in args.sections:
        timing(args, dtype)
    if 'noise' in args.sections:
        rows = noise_sweep(args.samples, args.noise_mm, dtype)
        print(f'\nRoot solves under keypoint noise ({args.samples} poses per level, stand-in '
              f'rest skeletons, {args.dtype}; noise = std per coordinate)\n')
        print('| noise (mm) | root solve | root err mean (deg) | root err p90 (deg) | '
              're-posed MPJPE (mm) |')
        print('|---:|---|---:|---:|---:|')
        for noise_mm, name, mean, p90, mpjpe in rows:
            print(f'| {noise_mm:g} | {name} | {_fmt(mean, 2)} | {_fmt(p90, 2)} | '
                  f'{_fmt(mpjpe, 1)} |')


if __name__ == '__main__':
    main()
