"""ONNX export: the exportable temporal median equals torch.median, the export forms of the
root fit and of the skinning equal the eager ones, the exported graphs (the IK and the body
model inside) match PyTorch under onnxruntime, and the inferencer runs them."""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import pytest
import torch
from einops import rearrange

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'test_apis'))
from apis_helpers import (EMBEDDED, build_model, make_synthetic_video,  # noqa: E402
                          save_checkpoint)
from unspat_mm.apis.streaming import OUTPUT_KEYS  # noqa: E402
from unspat_mm.models.necks.uncertainty import temporal_median  # noqa: E402
from unspat_mm.models.utils import (axis_angle_to_matrix, geodesic_distance,  # noqa: E402
                                    procrustes_rotation)

ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed: pip install -r '
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


class _RootFit(torch.nn.Module):
    def forward(self, source, target, weights):
        return procrustes_rotation(source, target, weights)


def test_the_exported_root_fit_matches_the_svd_fit(tmp_path):
    """procrustes_rotation traced by the TorchScript exporter (Horn's fit, no SVD) and run
    by onnxruntime: the eager SVD fit's rotation to 1e-5 rad where the fit is well posed,
    a proper rotation where it is not (identity without anything to fit)."""
    g = torch.Generator().manual_seed(0)
    source = 0.1 * torch.randn(2, 4, 3, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(_RootFit(), (source, source + 1, torch.full((2, 4), .25)),
                          str(tmp_path / 'root.onnx'), input_names=['s', 't', 'w'],
                          output_names=['r'], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: 'b'} for k in 'stwr'})
    session = ort.InferenceSession(str(tmp_path / 'root.onnx'),
                                   providers=['CPUExecutionProvider'])
    source = 0.1 * torch.randn(512, 4, 3, generator=g)
    rot = axis_angle_to_matrix(torch.randn(512, 3, generator=g) * 1.2)
    target = source @ rot.transpose(-1, -2) + 0.01 * torch.randn(512, 4, 3, generator=g) + .5
    weights = torch.rand(512, 4, generator=g) + 0.05
    weights = weights / weights.sum(-1, keepdim=True)
    target[-2:] = 0  # nothing to fit: identity
    target[-4:-2] = torch.linspace(-.1, .1, 4)[:, None] * torch.tensor([0., .6, .8])  # a line
    (fit, ) = session.run(None, dict(s=source.numpy(), t=target.numpy(), w=weights.numpy()))
    fit = torch.from_numpy(fit)
    angle = geodesic_distance(fit[:-4].double(), procrustes_rotation(source, target,
                                                                     weights)[:-4].double())
    print(f'\nonnxruntime root fit vs SVD fit: max {angle.max():.1e} rad')
    assert angle.max() < 1e-5
    assert torch.isfinite(fit).all()
    assert (fit.transpose(-1, -2) @ fit - torch.eye(3)).abs().max() < 1e-5
    assert (torch.linalg.det(fit) - 1).abs().max() < 1e-5
    assert torch.equal(fit[-2:], torch.eye(3).expand(2, 3, 3))


def test_the_export_skinning_is_smplx_lbs(standin_model_dir, monkeypatch):
    """The body model's export path (dynamic batch) gives smplx's vertices and joints."""
    from unspat_mm.models.body import SMPLBodyModel
    body = SMPLBodyModel(standin_model_dir)
    g = torch.Generator().manual_seed(1)
    rotmats = axis_angle_to_matrix(0.6 * torch.randn(3, 24, 3, generator=g))
    betas = torch.randn(3, 10, generator=g)
    expected = body(rotmats, betas)
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    out = body(rotmats, betas)
    for key in ('vertices', 'joints24', 'joints29'):
        torch.testing.assert_close(out[key], expected[key], rtol=0, atol=1e-6, msg=key)


@pytest.fixture(scope='module')
def exported(tmp_path_factory, standin_model_dir):
    from tools.deployment.pytorch2onnx import main
    root = tmp_path_factory.mktemp('onnx')
    model = build_model(EMBEDDED, standin_model_dir, seed=1)
    ckpt = save_checkpoint(model, root / 'model.pth')
    assert main([EMBEDDED, ckpt, str(root / 'out'), '--body-model-dir', standin_model_dir]) == 0
    return root / 'out', ckpt, model


def theta_angles(a, b):
    """(B, 72) axis-angle poses -> (B, 24) angles (radians) between their joint rotations
    (axis-angle is ill-conditioned near pi: compare the rotations)."""
    a, b = (axis_angle_to_matrix(rearrange(torch.from_numpy(x).double(), 'b (j c) -> b j c',
                                           c=3)) for x in (a, b))
    return geodesic_distance(a, b)


def test_onnxruntime_matches_pytorch(exported, standin_model_dir):
    """The exported graphs against the PyTorch backend on the same windows (1, 3 and 6 of
    them: the batch is dynamic); every output comes from onnxruntime."""
    from tools.deployment.pytorch2onnx import verify
    from unspat_mm.apis.onnx_backend import OnnxBackend, body_model_file_digest
    from unspat_mm.apis.streaming import TorchBackend
    out_dir, _, model = exported
    assert sorted(os.listdir(out_dir)) == ['backbone.onnx', 'faces.npy', 'meta.json',
                                           'neck_head.onnx']
    meta = json.loads((out_dir / 'meta.json').read_text())
    assert (meta['num_frames'], meta['frame_interval']) == (4, 8) and meta['is_standin']
    assert meta['outputs'] == list(OUTPUT_KEYS)
    assert meta['body_model']['sha256'] == body_model_file_digest(
        model.head.body_model.model_path)
    onnx, torch_backend = OnnxBackend(str(out_dir)), TorchBackend(model)
    assert [o.name for o in onnx.neck_head.get_outputs()] == list(OUTPUT_KEYS)
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    feats = torch_backend.features(crops)
    assert (onnx.features(crops) - feats).abs().max() < 1e-4
    windows = rearrange(feats, '(b t) c h w -> b t c h w', t=4)
    order = torch.randperm(4, generator=torch.Generator().manual_seed(4))
    windows = torch.cat([windows, windows[:, order]])  # 12 windows
    for batch in (1, 3, 12):
        a, b = onnx.predict(windows[:batch]), torch_backend.predict(windows[:batch])
        assert all(a[k].shape == b[k].shape and a[k].dtype == np.float32 for k in OUTPUT_KEYS)
        angle = theta_angles(a['theta'], b['theta'])
        errors = {k: np.abs(a[k] - b[k]).max() for k in OUTPUT_KEYS if k != 'theta'}
        print(f'\n[{batch} windows] theta {angle.max():.1e} rad, ' + ', '.join(
            f'{k} {v:.1e}' for k, v in errors.items()))
        assert angle.max() < 1e-3
        assert errors['vertices'] < 1e-4 and errors['joints24'] < 1e-4
        assert errors['keypoints3d'] < 1e-5 and errors['keypoints2d'] < 1e-5
        assert max(errors[k] for k in ('betas', 'camera', 'sigma', 'uncertainty')) < 1e-5
    # the posed mesh is not a constant of the graph: the windows' meshes differ
    assert np.abs(a['vertices'][0] - a['vertices'][1]).max() > 1e-2
    diffs = verify(model, str(out_dir), num_frames=4, seed=3)
    assert diffs['theta'] < 1e-3 and diffs['vertices'] < 1e-4 and diffs['features'] < 1e-4


def test_the_backend_refuses_another_body_model(exported, standin_model_dir, tmp_path):
    """The body model is baked into neck_head.onnx: the folder it came from passes, a
    folder with another model is refused, naming the re-export."""
    from unspat_mm.apis.onnx_backend import OnnxBackend
    out_dir = str(exported[0])
    OnnxBackend(out_dir, body_model_dir=standin_model_dir)
    name = json.loads((exported[0] / 'meta.json').read_text())['body_model']['file']
    with np.load(os.path.join(standin_model_dir, name)) as npz:
        arrays = dict(npz)
    arrays['v_template'] = arrays['v_template'] * 1.1  # a taller body
    np.savez(tmp_path / name, **arrays)
    with pytest.raises(ValueError, match=r'(?s)different model.*export again with .*'
                       r'pytorch2onnx.py.*--body-model-dir'):
        OnnxBackend(out_dir, body_model_dir=str(tmp_path))


def test_an_export_without_the_ik_is_refused(exported, tmp_path):
    """Files of an older export (network outputs only, the IK left to PyTorch)."""
    from unspat_mm.apis.onnx_backend import OnnxBackend
    for name in os.listdir(exported[0]):
        shutil.copy(exported[0] / name, tmp_path / name)
    meta = json.loads((tmp_path / 'meta.json').read_text())
    meta['outputs'] = ['keypoints3d', 'keypoints2d', 'twist', 'betas', 'camera', 'sigma',
                       'uncertainty']
    del meta['body_model']
    (tmp_path / 'meta.json').write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"lacks the outputs \['theta', 'joints24', "
                       r"'vertices'\].*export again"):
        OnnxBackend(str(tmp_path))


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
    count = 0
    for a, b in zip(onnx(frames, show_progress=False), torch_(frames, show_progress=False)):
        (pa, ), (pb, ) = a['predictions'], b['predictions']
        for key in ('keypoints3d', 'camera', 'betas', 'sigma', 'uncertainty_map'):
            np.testing.assert_allclose(pa[key], pb[key], atol=1e-5, err_msg=key)
        assert theta_angles(pa['theta'][None], pb['theta'][None]).max() < 1e-3
        np.testing.assert_allclose(pa['vertices'], pb['vertices'], atol=1e-4)
        count += 1
    assert count == 20


def test_missing_onnx_files_are_named(tmp_path):
    from unspat_mm.apis.onnx_backend import OnnxBackend
    (tmp_path / 'meta.json').write_text('{}')
    with pytest.raises(FileNotFoundError, match=r"lacks \['backbone.onnx', 'neck_head.onnx', "
                       r"'faces.npy'\]"):
        OnnxBackend(str(tmp_path))
