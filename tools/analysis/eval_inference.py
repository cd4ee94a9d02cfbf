"""Accuracy of the inference path (detection, tracking, streaming) on the synthetic
benchmark's test split, beside ``tools/test.py``'s on the same frames.

    python tools/analysis/eval_inference.py CONFIG CHECKPOINT [--det gt|hog|whole_image]
        [--causal] [--max-sequences N] [--min-track-frames 10] [--cfg-options k=v ...]

Every test sequence is run as a video of its own through
:class:`~unspat_mm.apis.UNSPATInferencer`:

- ``--det gt``: the dataset's boxes, the ones ``tools/test.py`` crops with, given as a box
  file with the sequence as the track: the same crops and windows, so the numbers must
  equal ``tools/test.py``'s (float rounding);
- ``--det hog`` / ``whole_image``: the demo's detection, tracking and box smoothing;
- ``--causal``: live mode, each frame predicted from its past only.

In each frame the person whose box contains the centre of the ground-truth person's box
(the largest overlap, if several) is scored; frames without one count as missed
(``coverage``). Metrics come from the config's ``MeshMetric``, on the inferencer's meshes
and, for comparison, on ``model.test_step``'s for the same frames. With missed frames
inside a sequence, Accel differences straddle the gaps. Needs a test set whose frames are
in memory (``SyntheticVideoDataset``).
"""
import argparse
import json
import os.path as osp
import tempfile
from typing import Dict, List, Optional

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate

import unspat_mm  # noqa: F401
from unspat_mm.apis import UNSPATInferencer
from unspat_mm.apis.detectors import build_detector
from unspat_mm.datasets import SyntheticVideoDataset
from unspat_mm.datasets.synthetic import prepare_config_body_model
from unspat_mm.registry import DATASETS, METRICS

METRIC_NAMES = ('MPJPE', 'PA-MPJPE', 'MPVPE', 'Accel')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--det', default='gt', choices=['gt', 'hog', 'whole_image'],
                        help="'gt' (the test boxes), 'hog' or 'whole_image'")
    parser.add_argument('--causal', action='store_true', help='live mode (past frames only)')
    parser.add_argument('--max-sequences', type=int, help='the first N test sequences only')
    parser.add_argument('--min-track-frames', type=int, default=10)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    return parser.parse_args(argv)


def _xyxy(cxcywh: np.ndarray) -> np.ndarray:
    cx, cy, w, h = cxcywh[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / union) if union > 0 else 0.0


def match_person(predictions: List[dict], gt_xyxy: np.ndarray) -> Optional[dict]:
    """The prediction whose box contains the ground-truth box's centre (the largest
    overlap if several), else None."""
    centre = (gt_xyxy[:2] + gt_xyxy[2:]) / 2
    inside = [p for p in predictions
              if np.all(centre >= p['bbox'][:2]) and np.all(centre <= p['bbox'][2:4])]
    return max(inside, key=lambda p: _iou(np.asarray(p['bbox'][:4]), gt_xyxy), default=None)


def _test_step_samples(model, dataset, batch_size: int = 8) -> List[dict]:
    samples = []
    for start in range(0, len(dataset), batch_size):
        stop = min(start + batch_size, len(dataset))
        batch = pseudo_collate([dataset[i] for i in range(start, stop)])
        samples += [s.to_dict() for s in model.test_step(batch)]
    return samples


def _metrics(metric_cfg: dict, samples: List[dict]) -> Dict[str, float]:
    if not samples:
        return {name: float('nan') for name in METRIC_NAMES}
    metric = METRICS.build(metric_cfg)
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def _mesh_metric_cfg(cfg: Config) -> dict:
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, (list, tuple)) \
        else [cfg.test_evaluator]
    for evaluator in evaluators:
        if 'MeshMetric' in evaluator['type']:
            return dict(evaluator, dump_path=None)
    raise ValueError(f'{cfg.filename}: test_evaluator has no MeshMetric to score with')


def evaluate(config: str, checkpoint: str, det: str = 'gt', max_sequences: int = None,
             min_track_frames: int = 10, cfg_options: Optional[dict] = None,
             causal: bool = False) -> dict:
    """Metrics of ``tools/test.py`` and of the inferencer on the covered frames; a dict
    with ``test_tool``, ``inferencer`` (metric dicts), ``frames``, ``covered``."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options or {})
    prepare_config_body_model(cfg)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    if not isinstance(dataset, SyntheticVideoDataset):
        raise TypeError(f'{config}: eval_inference needs the synthetic test set (frames in '
                        f'memory), got {type(dataset).__name__}; for a real dataset run '
                        'demo/unspat_demo.py and score its track files')
    dataset.full_init()
    ann = dataset.ann
    inferencer = UNSPATInferencer(cfg, checkpoint, det='whole_image' if det == 'gt' else det,
                                  body_model_dir=cfg.model.head.body_model.model_dir,
                                  min_track_frames=min_track_frames, causal=causal)
    model = inferencer.backend.model
    sequence_ids = list(dict.fromkeys(ann['sequence_id'].tolist()))[:max_sequences]
    rows = np.flatnonzero(np.isin(ann['sequence_id'], sequence_ids))
    reference = _test_step_samples(model, torch.utils.data.Subset(dataset, rows))
    position = {int(r): i for i, r in enumerate(rows)}  # dataset row -> reference index
    matched = []
    with tempfile.TemporaryDirectory() as tmp:
        for sid in sequence_ids:
            seq_rows = np.flatnonzero(ann['sequence_id'] == sid)
            frames = [np.ascontiguousarray(dataset.images[ann['img_index'][r]][..., ::-1])
                      for r in seq_rows]
            if det == 'gt':
                path = osp.join(tmp, f'{sid}.json')
                with open(path, 'w') as f:
                    json.dump(dict(bbox_format='cxcywh', frames=[
                        dict(frame_id=k, bboxes=[ann['bbox'][r].tolist()], track_ids=[int(sid)])
                        for k, r in enumerate(seq_rows)]), f)
                inferencer.detector = build_detector(path)
            results = list(inferencer(frames, show_progress=False))
            for r, result in zip(seq_rows, results):
                person = match_person(result['predictions'], _xyxy(ann['bbox'][r]))
                if person is not None:
                    matched.append((position[int(r)], person))
    kept = []
    if matched:
        theta = torch.as_tensor(np.stack([p['theta'] for _, p in matched]))
        betas = torch.as_tensor(np.stack([p['betas'] for _, p in matched]))
        with torch.no_grad():
            body = model.head.body_model(theta, betas)
        for i, (index, _) in enumerate(matched):
            kept.append(dict(reference[index], pred_theta=theta[i], pred_betas=betas[i],
                             **{f'pred_{key}': body[key][i]
                                for key in ('vertices', 'joints14', 'joints17', 'joints24')}))
    metric_cfg = _mesh_metric_cfg(cfg)
    covered = [reference[index] for index, _ in matched]
    return dict(frames=len(reference), covered=len(matched),
                test_tool_all=_metrics(metric_cfg, reference),
                test_tool=_metrics(metric_cfg, covered),
                inferencer=_metrics(metric_cfg, kept))


def main(argv=None):
    args = parse_args(argv)
    r = evaluate(args.config, args.checkpoint, args.det, args.max_sequences,
                 args.min_track_frames, args.cfg_options, args.causal)
    mode = ', causal' if args.causal else ''
    print(f'det={args.det}{mode}: {r["covered"]} of {r["frames"]} test frames covered '
          f'({100 * r["covered"] / max(r["frames"], 1):.1f}%)')
    print('| metric (mm; Accel mm/frame^2) | tools/test.py, all frames | tools/test.py, '
          'covered frames | inferencer, covered frames |')
    print('|---|---:|---:|---:|')
    for name in METRIC_NAMES:
        print(f'| {name} | {r["test_tool_all"].get(name, float("nan")):.2f} | '
              f'{r["test_tool"].get(name, float("nan")):.2f} | '
              f'{r["inferencer"].get(name, float("nan")):.2f} |')
    print(f'coverage: {r["covered"] / max(r["frames"], 1):.3f}')
    return r


if __name__ == '__main__':
    main()
