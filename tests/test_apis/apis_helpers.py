"""Helpers shared by the inference tests (imported by name: the tests folders are not
packages)."""
import json

import numpy as np
import torch
from mmengine.config import Config

from unspat_mm.engine.checkpoint import to_weights_only_safe
from unspat_mm.registry import MODELS

EMBEDDED = 'configs/unspat_synthetic.py'


def save_checkpoint(model, path, dataset_name='unspat_synthetic'):
    """Weights-only checkpoint as SafeCheckpointHook writes them (meta + state_dict)."""
    meta = dict(experiment_name='unit-test', iter=0, epoch=0,
                dataset_meta=dict(dataset_name=dataset_name, body_model_is_standin=True))
    torch.save(to_weights_only_safe(dict(meta=meta, state_dict=model.state_dict())), path)
    return str(path)


def build_model(config, model_dir, seed=0):
    """``config``'s model on the stand-in body, initialised with ``seed``; batch-norm
    statistics randomised so that features are not a trivial function of the input, and
    the heatmap layer's weights scaled up so that the keypoints spread over the cube
    (an initialised head bunches them at its centre, where the IK is ill-conditioned)."""
    cfg = Config.fromfile(config)
    cfg.model.head.body_model.model_dir = model_dir
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model).eval()
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=g)
            module.running_var.uniform_(0.5, 1.5, generator=g)
    with torch.no_grad():  # peaked heatmaps: keypoints spread out, long bones for the IK
        model.head.final_conv.weight.mul_(30)
    return model


def make_synthetic_video(synthetic_tiny, model_dir, settings, out_dir):
    """The tiny synthetic test split as one video: ``dict(frames, boxes_json, dataset_kw,
    sequence_ids)``; ``frames`` is a list of BGR frames (the split's sequences one after
    the other, 40 frames of 96x96), ``boxes_json`` a box file (``JsonBoxes`` layout) of
    the dataset's tracker-like boxes (cx, cy, w, h) with the sequence ids as track ids."""
    from unspat_mm.datasets import SyntheticVideoDataset
    kw = dict(split='test', cache_dir=synthetic_tiny[0], body_model_dir=model_dir,
              settings=settings, test_mode=True)
    dataset = SyntheticVideoDataset(num_frames=4, frame_interval=8, pipeline=[], **kw)
    dataset.full_init()
    ann = dataset.ann
    frames = [np.ascontiguousarray(dataset.images[i][..., ::-1]) for i in ann['img_index']]
    boxes = dict(bbox_format='cxcywh', frames=[
        dict(frame_id=i, bboxes=[ann['bbox'][i].tolist()], track_ids=[int(ann['sequence_id'][i])])
        for i in range(len(frames))])
    path = out_dir / 'boxes.json'
    path.write_text(json.dumps(boxes))
    return dict(frames=frames, boxes_json=str(path), dataset_kw=kw,
                sequence_ids=ann['sequence_id'].copy())
