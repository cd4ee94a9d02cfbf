"""Per-frame cost of inference on a video track, relative to one single-frame forward.

    python tools/analysis/benchmark_inference.py CONFIG [--checkpoint CKPT] [--frames 24]
        [--threads N] [--repeats 3]

Three ways to predict every frame of one track (random crops; detection, tracking and
cropping excluded, the same for all three):

- reference: one single-frame backbone forward and one head forward (the cost of a
  per-frame model without temporal context);
- streaming (``unspat_mm.apis``): the backbone once per frame (features in a ring
  buffer), the neck for the middle frame only and the head once per output frame;
- naive: the whole model on every frame's window (T backbone forwards per frame).

Prints a table and ``ratio: X`` (streaming / reference) and ``naive ratio: Y``. The body
model is the stand-in, written to a temporary folder (no SMPL needed); without
``--checkpoint`` the weights are initialised (the cost does not depend on them).
"""
import argparse
import statistics
import tempfile
import time

import numpy as np
import torch

import unspat_mm  # noqa: F401
from unspat_mm.apis import TorchBackend, TrackWindowBuffer, init_unspat_model
from unspat_mm.apis.model_loading import make_standin_body_model
from unspat_mm.datasets.base_video_dataset import window_rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights (default: initialised)')
    parser.add_argument('--frames', type=int, default=24, help='length of the track')
    parser.add_argument('--naive-frames', type=int, default=3,
                        help='frames timed for the naive way (it is slow)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    parser.add_argument('--repeats', type=int, default=3, help='median over this many runs')
    return parser.parse_args(argv)


def _timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark(config, checkpoint=None, frames=24, naive_frames=3, repeats=3, seed=0):
    """Seconds per frame of the three ways; a dict."""
    with tempfile.TemporaryDirectory() as body_dir:
        make_standin_body_model(body_dir)
        model, _, info = init_unspat_model(config, checkpoint, 'cpu', body_dir)
    settings = info['settings']
    backend = TorchBackend(model)
    w, h = settings.crop_cfg['input_size']
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8)
    with torch.no_grad():
        feat = backend.features(crops[:1])
        encoded = torch.randn(1, model.neck.embed_dims, *feat.shape[-2:])
        model.head(encoded)  # warm-up
        reference_backbone = _timed(lambda: backend.features(crops[:1]), repeats * 3)
        reference_head = _timed(lambda: model.head(encoded), repeats * 3)

        def streaming():
            buf = TrackWindowBuffer(0, settings.num_frames, settings.frame_interval)
            for f in range(frames):
                for _, window, _ in buf.push(f, backend.features(crops[f:f + 1])[0]):
                    backend.predict(window[None])
            for _, window, _ in buf.finish():
                backend.predict(window[None])

        def naive():
            for f in range(naive_frames):
                rows = window_rows(f, 0, frames, settings.num_frames, settings.frame_interval)
                clip = backend.features(crops[rows])
                encoded_clip = model.neck(clip[None])
                model.head(encoded_clip.feats)
        stream = _timed(streaming, repeats) / frames
        naive_time = _timed(naive, repeats) / naive_frames
    reference = reference_backbone + reference_head
    return dict(config=settings.config_name, num_frames=settings.num_frames,
                frame_interval=settings.frame_interval, backbone=reference_backbone,
                head=reference_head, reference=reference, streaming=stream, naive=naive_time,
                ratio=stream / reference, naive_ratio=naive_time / reference)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    r = benchmark(args.config, args.checkpoint, args.frames, args.naive_frames, args.repeats)
    print(f'{r["config"]}: T={r["num_frames"]}, frame_interval={r["frame_interval"]}, '
          f'{args.threads} torch thread(s), median of {args.repeats} runs')
    print('| way | ms per frame | / reference |')
    print('|---|---:|---:|')
    print(f'| reference: backbone (1 frame) + head | {1e3 * r["reference"]:.1f} | 1.00 |')
    print(f'|   backbone alone | {1e3 * r["backbone"]:.1f} | '
          f'{r["backbone"] / r["reference"]:.2f} |')
    print(f'|   head alone (IK and body model included) | {1e3 * r["head"]:.1f} | '
          f'{r["head"] / r["reference"]:.2f} |')
    print(f'| streaming (ring buffer, middle-frame neck) | {1e3 * r["streaming"]:.1f} | '
          f'{r["ratio"]:.2f} |')
    print(f'| naive (whole model per window) | {1e3 * r["naive"]:.1f} | '
          f'{r["naive_ratio"]:.2f} |')
    print(f'ratio: {r["ratio"]:.2f}')
    print(f'naive ratio: {r["naive_ratio"]:.2f}')
    return r


if __name__ == '__main__':
    main()
