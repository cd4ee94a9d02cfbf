"""Run UNSPAT on a video: per-person SMPL tracks, results.json and an overlay video.

    python demo/unspat_demo.py VIDEO --config CFG --checkpoint CKPT --out-dir DIR
        [--max-frames N] [--det hog|whole_image|BOXES.json|DET_CONFIG.py]
        [--det-checkpoint FILE] [--device cpu] [--smooth 2] [--render]
        [--renderer auto|pyrender|numpy] [--causal]
        [--body-model-dir DIR] [--backend onnx --onnx-dir DIR]

VIDEO is a video file or a folder of images. See docs/inference.md.
"""
import argparse
import os.path as osp
import pickle
import sys

from mmengine.config import DictAction

import unspat_mm  # noqa: F401  (registers the modules; mmcv-lite compatibility)
from unspat_mm.apis import UNSPATInferencer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('video', help='video file or folder of images')
    parser.add_argument('--config', required=True, help='model config, e.g. '
                        'configs/unspat_synthetic.py')
    parser.add_argument('--checkpoint', help='trained checkpoint (.pth, weights-only); '
                        'required unless --backend onnx')
    parser.add_argument('--out-dir', required=True, help='folder for the results')
    parser.add_argument('--max-frames', type=int, help='use the first N frames only')
    parser.add_argument('--det', default='hog', help="person boxes: 'hog' (OpenCV, built "
                        "in; default), 'whole_image', a .json box file, or an mmdet config")
    parser.add_argument('--det-checkpoint', help='checkpoint of the mmdet detector')
    parser.add_argument('--device', default='cpu', help='torch device (cpu, cuda:0)')
    parser.add_argument('--smooth', type=float, default=2.0,
                        help='Gaussian smoothing of the crop boxes over time, in frames '
                        '(0: off; default 2)')
    parser.add_argument('--render', action='store_true',
                        help='write vis.mp4: meshes, track ids and the uncertainty panel')
    parser.add_argument('--renderer', choices=['auto', 'pyrender', 'numpy'], default='auto',
                        help="how --render draws meshes: 'auto' (default): pyrender offscreen "
                        "(EGL or OSMesa) where it works, else numpy; 'pyrender': an error if "
                        "unavailable; 'numpy': the built-in rasteriser, no OpenGL")
    parser.add_argument('--causal', action='store_true',
                        help='live mode: predict each frame from its past frames only')
    parser.add_argument('--min-track-frames', type=int, default=10,
                        help='drop tracks shorter than this (default 10)')
    parser.add_argument('--body-model-dir', help='body model folder (overrides the config; '
                        'with --backend onnx it must hold the model the export baked in)')
    parser.add_argument('--save-vertices', action='store_true', help='meshes in the .npz files')
    parser.add_argument('--save-uncertainty-maps', action='store_true',
                        help='the (T, h, w) uncertainty maps in the .npz files')
    parser.add_argument('--backend', choices=['pytorch', 'onnx'], default='pytorch')
    parser.add_argument('--onnx-dir', help='folder written by tools/deployment/pytorch2onnx.py')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backend == 'pytorch' and not args.checkpoint:
        print('error: --checkpoint is required with the pytorch backend (a .pth written by '
              'tools/train.py).', file=sys.stderr)
        return 2
    if args.backend == 'onnx' and not args.onnx_dir:
        print('error: --backend onnx needs --onnx-dir (tools/deployment/pytorch2onnx.py).',
              file=sys.stderr)
        return 2
    try:
        inferencer = UNSPATInferencer(
            args.config, args.checkpoint, device=args.device, det=args.det,
            det_checkpoint=args.det_checkpoint, body_model_dir=args.body_model_dir,
            smooth=args.smooth, min_track_frames=args.min_track_frames, causal=args.causal,
            backend=args.backend, onnx_dir=args.onnx_dir, save_vertices=args.save_vertices,
            save_uncertainty_maps=args.save_uncertainty_maps, cfg_options=args.cfg_options,
            renderer=args.renderer)
        info = inferencer.info
        print(f'Model: config {info["config_name"]}; trained with: {info["summary"]}')
        if info['is_standin']:
            print('WARNING: the body model is the STAND-IN mannequin (NOT SMPL).')
        frames = people = 0
        for result in inferencer(args.video, out_dir=args.out_dir, max_frames=args.max_frames,
                                 render=args.render):
            frames += 1
            people += len(result['predictions'])
    except (FileNotFoundError, NotADirectoryError, ValueError, RuntimeError, ImportError,
            pickle.UnpicklingError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{frames} frames, {people} person-frames; results in {osp.abspath(args.out_dir)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
