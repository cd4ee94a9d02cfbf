"""projects/unspat_neck_in_mmpose: the packaged mmpose config plus UNSPATNeck
trains on a tiny COCO-format fixture, with T = 1 and with 2-frame clips."""
import copy
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import unspat_mm  # noqa: F401

CONFIG = osp.join(osp.dirname(__file__), '..', '..', 'projects', 'unspat_neck_in_mmpose',
                  'configs', 'td-hm_res18-unspat-neck_8xb64-210e_coco-64x64.py')


def _write_coco_fixture(root, num_images=8, size=96):
    """Images with a bright 'person' box and 17 visible keypoints inside it."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    osp_img = osp.join(root, 'images')
    __import__('os').makedirs(osp_img)
    for i in range(num_images):
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        x, y, w, h = 20 + i, 12, 40, 64
        img[y:y + h, x:x + w] = 200
        cv2.imwrite(osp.join(osp_img, f'{i:03d}.jpg'), img)
        kpts = np.stack([x + rng.uniform(2, w - 2, 17), y + rng.uniform(2, h - 2, 17),
                         np.full(17, 2.0)], axis=1)
        images.append(dict(id=i + 1, file_name=f'{i:03d}.jpg', height=size, width=size))
        annotations.append(dict(id=i + 1, image_id=i + 1, category_id=1, iscrowd=0,
                                bbox=[x, y, w, h], area=float(w * h), num_keypoints=17,
                                keypoints=kpts.round(1).flatten().tolist()))
    categories = [dict(id=1, name='person', supercategory='person', keypoints=[], skeleton=[])]
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def _config(root, work_dir, num_frames):
    cfg = Config.fromfile(CONFIG)
    cfg.model.neck.num_frames = num_frames
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False,
                                sampler=dict(type='DefaultSampler', shuffle=False))
    cfg.train_dataloader.dataset.update(data_root=root, ann_file='ann.json',
                                        data_prefix=dict(img='images/'))
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2)
    for key in ('val', 'test'):
        cfg[f'{key}_dataloader'] = cfg[f'{key}_cfg'] = cfg[f'{key}_evaluator'] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1000)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.fixture
def one_thread():
    """Small tensors: a second thread only adds synchronisation, and on a
    shared machine it can make training several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_config_inserts_the_neck_into_mmpose_base():
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.type == 'TopdownPoseEstimator' and cfg.default_scope == 'unspat_mm'
    assert cfg.model.neck.type == 'unspat_mm.UNSPATNeck' and cfg.model.neck.feat_size == (2, 2)
    assert cfg.model.backbone.depth == 18 and cfg.model.backbone.init_cfg is None
    assert cfg.visualizer.type == 'Visualizer'
    # Everything else still comes from the packaged base config.
    assert cfg.model.head.type == 'HeatmapHead' and cfg.optim_wrapper.optimizer.type == 'Adam'


@pytest.mark.parametrize('num_frames', [1, 2])
def test_a_few_training_iterations(tmp_path, num_frames, one_thread):
    root = str(tmp_path / 'coco')
    __import__('os').makedirs(root)
    _write_coco_fixture(root)
    runner = Runner.from_cfg(_config(root, str(tmp_path / 'work'), num_frames))
    neck = runner.model.neck
    assert type(neck).__name__ == 'UNSPATNeck' and neck.num_frames == num_frames
    before = copy.deepcopy(neck.state_dict())
    runner.train()
    assert runner.iter == 4  # 8 images / batch 4 x 2 epochs
    loss = runner.message_hub.get_scalar('train/loss_kpt').current()
    assert np.isfinite(loss) and loss > 0
    after = neck.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert all(torch.isfinite(v).all() for v in after.values())
    assert 'transformer.layers.0.attn.qkv.weight' in changed and 'norm.weight' in changed
    # SAM only acts on clips (T > 1); its zero-initialised last layer learns then.
    assert ('sam.fc2.weight' in changed) == (num_frames > 1)
    # Prediction through the plain estimator: one result per image.
    data = next(iter(runner.train_dataloader))
    runner.model.eval()
    with torch.no_grad():
        results = runner.model.test_step(data)
    assert len(results) == 4
    kpts = results[0].pred_instances.keypoints
    assert kpts.shape == (1, 17, 2) and np.isfinite(kpts).all()
