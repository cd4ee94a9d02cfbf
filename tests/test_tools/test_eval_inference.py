"""tools/analysis/eval_inference.py: with the test boxes the inferencer reproduces
tools/test.py's metrics on the synthetic test split; with a detector it reports the
frames it covered and scores only those."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from tools.analysis import eval_inference
from unspat_mm.registry import MODELS


@pytest.fixture(scope='module')
def tiny_job(tmp_path_factory, standin_model_dir, synthetic_tiny):
    root = tmp_path_factory.mktemp('eval_inference')
    options = {'model.head.body_model.model_dir': standin_model_dir,
               'body_model_dir': standin_model_dir, 'standin_body_model_dir': standin_model_dir,
               'test_evaluator.0.body_model.model_dir': standin_model_dir,
               'test_dataloader.dataset.cache_dir': synthetic_tiny[0],
               'test_dataloader.dataset.preset': 'tiny',
               'test_dataloader.dataset.body_model_dir': standin_model_dir}
    cfg = Config.fromfile('configs/unspat_synthetic.py')
    cfg.merge_from_dict(options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = root / 'initialised.pth'
    torch.save(dict(meta=dict(dataset_meta=dict(dataset_name='unspat_synthetic')),
                    state_dict=model.state_dict()), path)
    return str(path), options


def test_test_boxes_reproduce_the_test_tool(tiny_job, capsys):
    checkpoint, options = tiny_job
    r = eval_inference.main(['configs/unspat_synthetic.py', checkpoint, '--det', 'gt',
                             '--max-sequences', '2',
                             '--cfg-options', *[f'{k}={v}' for k, v in options.items()]])
    assert r['covered'] == r['frames'] > 0
    for name in eval_inference.METRIC_NAMES:
        assert r['test_tool'][name] == r['test_tool_all'][name]
        # the bound is 1 mm; the same crops and windows agree to rounding
        assert abs(r['inferencer'][name] - r['test_tool'][name]) < 1e-2, name
    assert 'coverage: 1.000' in capsys.readouterr().out


def test_a_detector_scores_the_frames_it_covers(tiny_job):
    checkpoint, options = tiny_job
    r = eval_inference.evaluate('configs/unspat_synthetic.py', checkpoint, 'whole_image',
                                max_sequences=1, cfg_options=options)
    assert r['covered'] == r['frames'] > 0  # the whole frame contains every person
    # other crops than the test pipeline's: other predictions
    assert abs(r['inferencer']['MPJPE'] - r['test_tool']['MPJPE']) > 1e-3


def test_match_person_takes_the_box_around_the_centre():
    gt = np.array([10., 10., 30., 50.])
    far = dict(bbox=np.array([40., 0., 60., 40.]))
    loose = dict(bbox=np.array([0., 0., 100., 100.]))
    tight = dict(bbox=np.array([9., 12., 31., 49.]))
    assert eval_inference.match_person([far, loose, tight], gt) is tight
    assert eval_inference.match_person([far], gt) is None
