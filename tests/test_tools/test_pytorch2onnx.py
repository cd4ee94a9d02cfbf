"""ONNX export: the exportable temporal median equals torch.median, the exported graphs
match PyTorch under onnxruntime, and the inferencer runs them."""
import json
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test_apis'))
from apis_helpers import (EMBEDDED, build_model, make_synthetic_video,  # noqa: E402
                          save_checkpoint)
from unspat_mm.models.necks.uncertainty import temporal_median  # noqa: E402

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed: pip install -r '
                    'requirements/inference.txt')


@pytest.mark.parametrize('frames', [1, 2, 4, 5, 16])
def test_the_export_median_is_torch_median(frames, monkeypatch):
    g = torch.Generator().manual_seed(frames)
    feats = torch.randn(3, frames, 8, 4, 4, generator=g)
    feats[0] = feats[0].round()  # many ties, as after a ReLU
    feats[1] = torch.relu(feats[1])
    expected = feats.median(dim=1, keepdim=True).values
    assert torch.equal(temporal_median(feats), expected)
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    assert torch.equal(temporal_median(feats), expected)  # the sort-based path, bit-exact


@pytest.fixture(scope='module')
def exported(tmp_path_factory, standin_model_dir):
    from tools.deployment.pytorch2onnx import main
    root = tmp_path_factory.mktemp('onnx')
    model = build_model(EMBEDDED, standin_model_dir, seed=1)
    ckpt = save_checkpoint(model, root / 'model.pth')
    assert main([EMBEDDED, ckpt, str(root / 'out'), '--body-model-dir', standin_model_dir]) == 0
    return root / 'out', ckpt, model


def test_onnxruntime_matches_pytorch(exported):
    from tools.deployment.pytorch2onnx import verify
    out_dir, _, model = exported
    assert sorted(os.listdir(out_dir)) == ['backbone.onnx', 'faces.npy', 'meta.json',
                                           'neck_head.onnx']
    meta = json.loads((out_dir / 'meta.json').read_text())
    assert (meta['num_frames'], meta['frame_interval']) == (4, 8) and meta['is_standin']
    diffs = verify(model, str(out_dir), num_frames=4, seed=3)
    assert diffs['theta'] < 1e-3 and diffs['vertices'] < 1e-4
    assert diffs['features'] < 1e-4 and diffs['keypoints3d'] < 1e-5


def test_the_inferencer_runs_the_onnx_files(exported, standin_model_dir, synthetic_tiny,
                                           tiny_settings, tmp_path):
    from unspat_mm.apis import UNSPATInferencer
    out_dir, ckpt, _ = exported
    video = make_synthetic_video(synthetic_tiny, standin_model_dir, tiny_settings, tmp_path)
    frames = video['frames'][:20]
    common = dict(det=video['boxes_json'], body_model_dir=standin_model_dir)
    onnx = UNSPATInferencer(None, backend='onnx', onnx_dir=str(out_dir), **common)
    torch_ = UNSPATInferencer(EMBEDDED, ckpt, **common)
    assert 'ONNX' in onnx.info['summary']
    for a, b in zip(onnx(frames, show_progress=False), torch_(frames, show_progress=False)):
        (pa, ), (pb, ) = a['predictions'], b['predictions']
        for key in ('keypoints3d', 'camera', 'betas', 'sigma', 'uncertainty_map'):
            np.testing.assert_allclose(pa[key], pb[key], atol=1e-5, err_msg=key)
        # the IK (the same PyTorch code in both) amplifies the ~1e-7 m differences of the
        # keypoints where a random model's bones nearly align with their rest directions
        np.testing.assert_allclose(pa['vertices'], pb['vertices'], atol=1e-3)


def test_missing_onnx_files_are_named(tmp_path):
    from unspat_mm.apis.onnx_backend import OnnxBackend
    (tmp_path / 'meta.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match=r"lacks \['backbone.onnx', 'neck_head.onnx', "
                       r"'faces.npy'\]"):
        OnnxBackend(str(tmp_path))
