"""Cost of UNSPAT's Space2Batch attention against full spatiotemporal attention
and spatially pooled (MPS-Net-like) temporal attention.

For every attention mode, clip length T and feature size h x w,
:class:`UNSPATNeck` (3-layer, 8-head transformer of width d; SAM and the
uncertainty estimator only with ``--use-sam`` / ``--use-uncertainty``, so that
by default the attention designs are compared alone) runs forward + backward
on one batch of clips (eval mode: no dropout, no synthetic artifacts) and the
tool reports

* time: wall time of forward + backward, the fastest of several runs
  interleaved across the modes (the machine may be shared);
* peak memory: the largest amount of tensor memory allocated during forward +
  backward on top of what existed before (weights, inputs), from the
  profiler's allocation events on CPU, ``torch.cuda.max_memory_allocated`` on
  CUDA; it includes the parameter gradients (about 24 MiB at d = 512);
* x s2b: ratio to the first mode of the row group (space2batch by default);
* GFLOP: forward + backward, counted by ``torch.utils.flop_counter`` (one
  multiply-add = 2 FLOP), with the CPU attention kernel registered below;
* GFLOP/s achieved, beside a plain (B T h w, d) @ (d, d) matmul timed on the
  same machine.

Memory depends on the attention kernel: torch's fused kernels (the default)
never store the (L, L) attention matrix, so full attention costs time but
little memory; ``--math-attention`` forces the plain softmax(QK^T)V kernel,
which stores it, as a straightforward implementation would (rows whose
attention matrices would exceed ``--max-attn-gib`` are skipped).

Also prints the parameter count and forward FLOPs of the paper configuration
(one 16-frame clip of 8x8x512 features).

Usage::

    python tools/analysis/benchmark_neck.py            # full grid (~3 min, 1 CPU thread)
    python tools/analysis/benchmark_neck.py --quick    # T in {8, 16}, h w in {4^2, 8^2}
    python tools/analysis/benchmark_neck.py --threads 1 --math-attention
    python tools/analysis/benchmark_neck.py --use-sam --use-uncertainty --frames 16 --sizes 8

On a machine shared with other jobs, ``--threads 1`` gives far steadier
numbers than several threads competing for cores.
"""
import argparse
import itertools
import sys
import time
from contextlib import nullcontext

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

import unspat_mm  # noqa: F401
from unspat_mm.models.necks import UNSPATNeck

MODES = ('space2batch', 'full', 'gap_temporal')


def _register_cpu_attention_flops():
    """torch counts the CUDA attention kernels but not the CPU one."""
    aten = torch.ops.aten
    cpu_fwd = getattr(aten, '_scaled_dot_product_flash_attention_for_cpu', None)
    if cpu_fwd is None or cpu_fwd in flop_counter.flop_registry:
        return

    @flop_counter.register_flop_formula(cpu_fwd)
    def _fwd(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    @flop_counter.register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
    def _bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
             **kwargs):
        return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                                     value_shape)


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def peak_memory_bytes(fn, device) -> int:
    """Peak tensor memory allocated by ``fn()`` beyond what existed before."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'),
                    key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def time_once(fn, device):
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def fastest_round_robin(fns, device, rounds, budget_s):
    """Fastest of ``rounds`` or more runs of each function (more while the
    total stays under ``budget_s``), interleaved so that every candidate meets
    the same load: on a shared machine the minimum is the least disturbed
    measurement, and interleaving keeps the ratios fair."""
    best = {k: float('inf') for k in fns}
    spent, done = 0.0, 0
    while done < rounds or (spent < budget_s and done < 50):
        for k, fn in fns.items():
            sec = time_once(fn, device)
            best[k] = min(best[k], sec)
            spent += sec
        done += 1
    return best


def make_neck(attention, t, hw, dims, device, **kwargs):
    torch.manual_seed(0)
    return UNSPATNeck(in_channels=dims, num_frames=t, feat_size=(hw, hw), attention=attention,
                      drop_rate=0.0, **kwargs).to(device).eval()


def attention_matrix_bytes(attention, t, hw, batch, heads=8, layers=3):
    """Logits + weights of every layer, as the math kernel stores them."""
    seqs, length = dict(space2batch=(batch * hw * hw, t), full=(batch, t * hw * hw),
                        gap_temporal=(batch, t))[attention]
    return 2 * layers * seqs * heads * length**2 * 4


def bench_group(modes, t, hw, dims, batch, device, rounds, **neck_kwargs):
    """Per mode: fastest fwd+bwd time, peak memory, FLOPs; plus the reference
    matmul's time and FLOPs under key 'matmul'."""
    clip = torch.randn(batch, t, dims, hw, hw, device=device)
    steps, results = {}, {}
    for mode in modes:
        neck = make_neck(mode, t, hw, dims, device, **neck_kwargs)

        def step(neck=neck):
            neck(clip).feats.square().mean().backward()
            neck.zero_grad(set_to_none=True)

        with FlopCounterMode(display=False) as counter:  # doubles as the warm-up run
            first = time_once(step, device)
        results[mode] = dict(flops=counter.get_total_flops(), peak=peak_memory_bytes(step, device),
                             first=first)
        steps[mode] = step
    a = torch.randn(batch * t * hw * hw, dims, device=device)
    w = torch.randn(dims, dims, device=device)
    for _ in range(3):  # warm-up (thread pool, caches)
        a @ w
    steps['matmul'] = lambda: a @ w
    results['matmul'] = dict(flops=2 * a.shape[0] * dims * dims)
    slow = max(r.get('first', 0) for r in results.values()) > 5
    best = fastest_round_robin(steps, device, 1 if slow else rounds, 0 if slow else 3.0)
    for k, sec in best.items():
        results[k]['sec'] = sec
    return results


def paper_stats(device):
    neck = make_neck('space2batch', 16, 8, 512, device)
    params = sum(p.numel() for p in neck.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        neck(torch.randn(1, 16, 512, 8, 8, device=device))
    flops = counter.get_total_flops()
    parts = {name: sum(p.numel() for p in m.parameters()) for name, m in neck.named_children()}
    print(f'Paper configuration (C=512, T=16, 8x8, 3 layers, 8 heads, FFN ratio 2): '
          f'{params:,} parameters ({", ".join(f"{k} {v:,}" for k, v in parts.items() if v)}, '
          f'positional embeddings {params - sum(parts.values()):,}); forward of one clip '
          f'{flops / 1e9:.2f} GFLOP = {flops / 2e9:.2f} GMAC')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='T in {8, 16}, h w in {4^2, 8^2}')
    parser.add_argument('--frames', type=int, nargs='+', default=[8, 16, 32])
    parser.add_argument('--sizes', type=int, nargs='+', default=[4, 8, 16], help='h = w')
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--dims', type=int, default=512)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (1 is steadier on a shared machine)')
    parser.add_argument('--use-sam', action='store_true', help='include SAM')
    parser.add_argument('--use-uncertainty', action='store_true',
                        help='include the estimator and eq. 2 re-weighting')
    parser.add_argument('--math-attention', action='store_true',
                        help='force the unfused softmax(QK^T)V attention kernel')
    parser.add_argument('--max-attn-gib', type=float, default=4.0,
                        help='with --math-attention, skip rows storing more than this')
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.sizes, args.repeats = [8, 16], [4, 8], 2
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    _register_cpu_attention_flops()
    neck_kwargs = dict(use_sam=args.use_sam, use_uncertainty=args.use_uncertainty)
    kernel = (lambda: sdpa_kernel([SDPBackend.MATH])) if args.math_attention else nullcontext
    print(f'torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, '
          f'batch {args.batch}, d={args.dims}, {neck_kwargs}, '
          f'{"math" if args.math_attention else "default (fused)"} attention kernel')
    paper_stats(device)
    print('\n| T | h x w | attention | fwd+bwd ms | x s2b | peak MiB | x s2b | GFLOP | '
          'GFLOP/s | matmul GFLOP/s |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for t, hw in itertools.product(args.frames, args.sizes):
        modes = []
        for mode in args.modes:
            need = attention_matrix_bytes(mode, t, hw, args.batch)
            if args.math_attention and need > args.max_attn_gib * 2**30:
                print(f'| {t} | {hw}x{hw} | {mode} | skipped: attention matrices '
                      f'{need / 2**30:.1f} GiB > --max-attn-gib | | | | | | |', flush=True)
            else:
                modes.append(mode)
        if not modes:
            continue
        with kernel():
            res = bench_group(modes, t, hw, args.dims, args.batch, device, args.repeats,
                              **neck_kwargs)
        mm, ref = res['matmul'], res[modes[0]]
        for mode in modes:
            r = res[mode]
            print(f'| {t} | {hw}x{hw} | {mode} | {1e3 * r["sec"]:.1f} | '
                  f'{r["sec"] / ref["sec"]:.2f} | {r["peak"] / 2**20:.1f} | '
                  f'{r["peak"] / max(ref["peak"], 1):.2f} | {r["flops"] / 1e9:.2f} | '
                  f'{r["flops"] / r["sec"] / 1e9:.1f} | {mm["flops"] / mm["sec"] / 1e9:.1f} |',
                  flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
