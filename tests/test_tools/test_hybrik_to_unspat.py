"""tools/model_converters/hybrik_to_unspat.py: HybrIK's and mmhuman3d's ResNet-34
checkpoints (written here with their exact key names and shapes, random weights) convert,
and the converted model reproduces an independent forward written from HybrIK's
equations; unsafe, truncated, foreign and clobbering inputs are refused."""
import copy
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from tools.model_converters.hybrik_to_unspat import ConversionError, convert, main
from unspat_mm.registry import MODELS

BLOCKS = (3, 4, 6, 3)  # ResNet-34's basic blocks per stage
WIDTHS = (64, 128, 256, 512)
# HybrIK's input normalisation (hybrik/utils/presets: RGB crop / 255, minus and divided by
# ImageNet's statistics in BGR order)
HYBRIK_MEAN, HYBRIK_STD = (0.406, 0.457, 0.480), (0.225, 0.224, 0.229)


def _bn(g, prefix, channels):
    return {f'{prefix}.weight': 1 + 0.1 * torch.randn(channels, generator=g),
            f'{prefix}.bias': 0.1 * torch.randn(channels, generator=g),
            f'{prefix}.running_mean': 0.1 * torch.randn(channels, generator=g),
            f'{prefix}.running_var': 0.5 + torch.rand(channels, generator=g),
            f'{prefix}.num_batches_tracked': torch.tensor(1000)}


def _conv(g, *shape, fan_in):
    return torch.randn(*shape, generator=g) * (1.0 / fan_in)**0.5


def resnet34_weights(g, prefix):
    """torchvision / HybrIK ``preact`` names and shapes of a ResNet-34, random values."""
    sd = {f'{prefix}conv1.weight': _conv(g, 64, 3, 7, 7, fan_in=3 * 49),
          **_bn(g, f'{prefix}bn1', 64)}
    in_ch = 64
    for stage, (blocks, width) in enumerate(zip(BLOCKS, WIDTHS), 1):
        for i in range(blocks):
            p = f'{prefix}layer{stage}.{i}.'
            sd[p + 'conv1.weight'] = _conv(g, width, in_ch, 3, 3, fan_in=in_ch * 9)
            sd.update(_bn(g, p + 'bn1', width))
            sd[p + 'conv2.weight'] = _conv(g, width, width, 3, 3, fan_in=width * 9) * 0.5
            sd.update(_bn(g, p + 'bn2', width))
            if i == 0 and stage > 1:
                sd[p + 'downsample.0.weight'] = _conv(g, width, in_ch, 1, 1, fan_in=in_ch)
                sd.update(_bn(g, p + 'downsample.1', width))
            in_ch = width
    return sd


def hybrik_head_weights(g, prefix, with_camera=True):
    """``Simple3DPoseBaseSMPLCam``'s head (or mmhuman3d's ``HybrIKHead``, no camera)."""
    sd, in_ch = {}, 512
    for i in (0, 3, 6):
        sd[f'{prefix}deconv_layers.{i}.weight'] = _conv(g, in_ch, 256, 4, 4, fan_in=in_ch * 4)
        sd.update(_bn(g, f'{prefix}deconv_layers.{i + 1}', 256))
        in_ch = 256
    sd[f'{prefix}final_layer.weight'] = torch.randn(29 * 64, 256, 1, 1, generator=g) * 0.3
    sd[f'{prefix}final_layer.bias'] = torch.randn(29 * 64, generator=g)
    linears = dict(fc1=(1024, 512, 0.05), fc2=(1024, 1024, 0.03), decshape=(10, 1024, 0.03),
                   decphi=(46, 1024, 0.03))
    if with_camera:
        linears.update(deccam=(3, 1024, 0.002), decsigma=(29, 1024, 0.03))
    for name, (out, inp, std) in linears.items():
        sd[f'{prefix}{name}.weight'] = torch.randn(out, inp, generator=g) * std
        sd[f'{prefix}{name}.bias'] = torch.randn(out, generator=g) * 0.1
    sd[f'{prefix}init_shape'] = torch.randn(10, generator=g) * 0.3  # h36m_mean_beta.npy
    if with_camera:
        sd[f'{prefix}init_cam'] = torch.tensor([0.9, 0.0, 0.0])
    return sd


def smpl_layer_buffers():
    """The buffers HybrIK's ``SMPL_layer`` puts into its checkpoints (real shapes)."""
    return {'smpl.faces_tensor': torch.zeros(13776, 3, dtype=torch.long),
            'smpl.v_template': torch.zeros(6890, 3), 'smpl.shapedirs': torch.zeros(6890, 3, 10),
            'smpl.posedirs': torch.zeros(207, 20670), 'smpl.J_regressor': torch.zeros(24, 6890),
            'smpl.J_regressor_h36m': torch.zeros(17, 6890),
            'smpl.children_map': torch.zeros(29, dtype=torch.long),
            'smpl.parents': torch.zeros(29, dtype=torch.long),
            'smpl.lbs_weights': torch.zeros(6890, 24)}


def write_hybrik_checkpoint(path, seed=0, under_model=True):
    """HybrIK's ResNet-34 SMPL+camera checkpoint, behind DataParallel's ``module.``."""
    g = torch.Generator().manual_seed(seed)
    sd = {**resnet34_weights(g, 'preact.'), **hybrik_head_weights(g, ''), **smpl_layer_buffers()}
    sd = {f'module.{k}': v for k, v in sd.items()}
    torch.save({'model': sd, 'epoch': 200} if under_model else sd, path)
    return {k[len('module.'):]: v for k, v in sd.items()}


def write_mmhuman3d_checkpoint(path, seed=1):
    """mmhuman3d's HybrIK ResNet-34 (mmcv layout; numpy in the meta, as mmcv writes)."""
    g = torch.Generator().manual_seed(seed)
    sd = {**resnet34_weights(g, 'backbone.'), **hybrik_head_weights(g, 'head.', False),
          **smpl_layer_buffers()}
    meta = dict(mmcv_version='1.3.17', epoch=400, hook_msgs=dict(best_score=np.float64(0.5)))
    torch.save({'meta': meta, 'state_dict': sd, 'optimizer': {'state': {}}}, path)
    return {k[len('backbone.'):] if k.startswith('backbone.') else k: v for k, v in sd.items()}


# ---- an independent forward from HybrIK's published equations ----------------------------

def _bn_eval(x, sd, p):
    return F.batch_norm(x, sd[p + '.running_mean'], sd[p + '.running_var'], sd[p + '.weight'],
                        sd[p + '.bias'], False, 0.0, 1e-5)


def hybrik_forward(img, sd, backbone_prefix):
    """HybrIK's ``Simple3DPoseBaseSMPLCam.forward`` (no flip, no bboxes) up to the IK."""
    p = backbone_prefix
    x = F.relu(_bn_eval(F.conv2d(img, sd[p + 'conv1.weight'], stride=2, padding=3), sd, p + 'bn1'))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, blocks in enumerate(BLOCKS, 1):
        for i in range(blocks):
            b, stride = f'{p}layer{stage}.{i}.', 2 if i == 0 and stage > 1 else 1
            out = F.relu(_bn_eval(F.conv2d(x, sd[b + 'conv1.weight'], stride=stride, padding=1),
                                  sd, b + 'bn1'))
            out = _bn_eval(F.conv2d(out, sd[b + 'conv2.weight'], padding=1), sd, b + 'bn2')
            if b + 'downsample.0.weight' in sd:
                x = _bn_eval(F.conv2d(x, sd[b + 'downsample.0.weight'], stride=stride), sd,
                             b + 'downsample.1')
            x = F.relu(out + x)
    x0, out = x, x
    for i in (0, 3, 6):
        out = F.conv_transpose2d(out, sd[f'deconv_layers.{i}.weight'], stride=2, padding=1)
        out = F.relu(_bn_eval(out, sd, f'deconv_layers.{i + 1}'))
    out = F.conv2d(out, sd['final_layer.weight'], sd['final_layer.bias'])
    n = out.shape[0]
    heatmaps = out.reshape(n, 29, -1).softmax(dim=2)
    heatmaps = (heatmaps / heatmaps.sum(dim=2, keepdim=True)).reshape(n, 29, 64, 64, 64)
    grid = torch.arange(64, dtype=torch.float32)
    coord = [(heatmaps.sum(dims) * grid).sum(dim=2, keepdim=True) / 64 - 0.5
             for dims in ((2, 3), (2, 4), (3, 4))]  # x (width), y (height), z (depth)
    uvd = torch.cat(coord, dim=2)
    xc = F.linear(F.linear(x0.mean(dim=(2, 3)), sd['fc1.weight'], sd['fc1.bias']),
                  sd['fc2.weight'], sd['fc2.bias'])  # dropout: identity in eval
    shape = F.linear(xc, sd['decshape.weight'], sd['decshape.bias']) + sd['init_shape']
    phi = F.linear(xc, sd['decphi.weight'], sd['decphi.bias']).reshape(n, 23, 2)
    camera = F.linear(xc, sd['deccam.weight'], sd['deccam.bias']) + sd['init_cam']
    sigma = F.linear(xc, sd['decsigma.weight'], sd['decsigma.bias']).sigmoid()
    cam_scale, cam_trans = camera[:, :1].unsqueeze(1), camera[:, 1:].unsqueeze(1)
    cam_depth = 1000.0 / (256.0 * cam_scale + 1e-9)
    xyz = torch.zeros_like(uvd)  # units of 2.2 m
    xyz[:, :, 2:] = uvd[:, :, 2:]
    xyz[:, :, :2] = (uvd[:, :, :2] * 256.0 / 1000.0 * (xyz[:, :, 2:] * 2.2 + cam_depth)
                     - cam_trans) / 2.2
    xyz = xyz - xyz[:, [0]]
    # HybrIK's IK divides phi by its norm (+1e-8) before use
    return dict(uvd=uvd, keypoints3d=xyz * 2.2, twist=phi / (phi.norm(dim=2, keepdim=True)),
                betas=shape, camera=camera, sigma=sigma)


# ---- the model side ---------------------------------------------------------------------

@pytest.fixture(scope='module')
def paper_model(standin_model_dir):
    cfg = copy.deepcopy(Config.fromfile('configs/_base_/models/unspat_r34.py').model)
    cfg.head.body_model.model_dir = standin_model_dir
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


@pytest.fixture(scope='module')
def crop():
    g = torch.Generator().manual_seed(7)
    return torch.rand(1, 1, 3, 256, 256, generator=g) * 255  # (B, T, 3, H, W) RGB pixels


def hybrik_normalised(pixels):
    mean = torch.tensor(HYBRIK_MEAN).view(3, 1, 1)
    std = torch.tensor(HYBRIK_STD).view(3, 1, 1)
    return (pixels[:, 0] / 255.0 - mean) / std


def run_converted(model, ckpt_path, crop):
    """Load the converted file into the paper model; backbone -> head (neck bypassed)."""
    model = copy.deepcopy(model)
    load_checkpoint(model, str(ckpt_path), map_location='cpu', logger='silent')
    with torch.no_grad():
        inputs = model.data_preprocessor(dict(inputs=[crop[0]]))['inputs']
        feats = model.backbone(inputs[:, 0])[-1]
        return model, model.head(feats, with_mesh=False)


def assert_matches(out, ref, keys):
    for key in keys:
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=1e-5, msg=key)


def test_hybrik_checkpoint_converts_and_reproduces_hybrik(tmp_path, paper_model, crop):
    src = tmp_path / 'pretrained_w_cam.pth'
    sd = write_hybrik_checkpoint(src)
    out_path = tmp_path / 'out' / 'hybrik_res34_unspat.pth'
    lines = []
    written = convert(str(src), str(out_path), log=lines.append)
    log = '\n'.join(lines)
    for group in ('backbone', 'deconv', 'final conv', 'regressors', 'dropped'):
        assert f'  {group}' in log, group
    assert 'backbone     216 tensors,  21.30M' in log and 'smpl.*' in log
    # what mmengine's load_checkpoint sees: weights_only, backbone + head, no neck
    on_disk = torch.load(out_path, map_location='cpu', weights_only=True)
    assert set(on_disk) == {'state_dict', 'meta'}
    model_keys = paper_model.state_dict()
    for key, value in on_disk['state_dict'].items():
        assert key in model_keys and model_keys[key].shape == value.shape, key
    not_loaded = {k for k in model_keys if k not in on_disk['state_dict']}
    assert {k.split('.')[0] for k in not_loaded} == {'neck'}
    assert len(on_disk['state_dict']) == len(sd) - len(smpl_layer_buffers())
    assert on_disk['meta']['depth_factor'] == 2.2 and on_disk['meta']['not_in_source'] == []
    assert sorted(on_disk['meta']['dropped']) == sorted(smpl_layer_buffers())
    assert written['meta'] == on_disk['meta']

    model, out = run_converted(paper_model, out_path, crop)
    # the paper config normalises as HybrIK does
    torch.testing.assert_close(model.data_preprocessor.mean.flatten(),
                               torch.tensor(HYBRIK_MEAN) * 255)
    with torch.no_grad():
        ref = hybrik_forward(hybrik_normalised(crop), sd, 'preact.')
    assert 0.1 < ref['uvd'].std() and 0.3 < ref['camera'][0, 0] < 1.5  # a non-trivial case
    assert_matches(out, ref, ('uvd', 'keypoints3d', 'twist', 'betas', 'camera', 'sigma'))
    # and the keypoints the IK gets are HybrIK's, in metres: a bone is tens of centimetres
    assert 0.05 < (out['keypoints3d'][0, 4] - out['keypoints3d'][0, 1]).norm() < 3.0


def test_mmhuman3d_checkpoint_converts_and_reproduces_hybrik(tmp_path, paper_model, crop):
    src = tmp_path / 'resnet34_hybrik_pw3d.pth'
    sd = write_mmhuman3d_checkpoint(src)
    out_path = tmp_path / 'converted.pth'
    lines = []
    convert(str(src), str(out_path), log=lines.append)
    assert 'not in the source' in '\n'.join(lines)
    on_disk = torch.load(out_path, map_location='cpu', weights_only=True)
    meta = on_disk['meta']
    assert meta['source_layout'] == 'mmhuman3d' and meta['depth_factor'] == 2.0
    assert meta['pixel_mean'] == [123.675, 116.28, 103.53]  # mmhuman3d trains with these
    missing = {k for k in paper_model.state_dict() if k not in on_disk['state_dict']}
    assert {k for k in missing if not k.startswith('neck.')} == {
        'head.camera_fc.weight', 'head.camera_fc.bias', 'head.sigma_fc.weight',
        'head.sigma_fc.bias', 'head.init_cam'}
    model, out = run_converted(paper_model, out_path, crop)
    # mmhuman3d's head has no camera / sigma regressors: the model keeps its own
    head = model.head
    sd.update({'deccam.weight': head.camera_fc.weight, 'deccam.bias': head.camera_fc.bias,
               'decsigma.weight': head.sigma_fc.weight, 'decsigma.bias': head.sigma_fc.bias,
               'init_cam': head.init_cam})
    sd.update({k[len('head.'):]: v for k, v in sd.items() if k.startswith('head.')})
    with torch.no_grad():
        ref = hybrik_forward(hybrik_normalised(crop), sd, '')
    assert_matches(out, ref, ('uvd', 'twist', 'betas'))
    # camera, sigma and the back-projection with the model's own camera regressor
    assert_matches(out, ref, ('keypoints3d', 'camera', 'sigma'))


# ---- refusals ---------------------------------------------------------------------------

def _resnet50_hybrik():
    g = torch.Generator().manual_seed(0)
    sd = {'preact.conv1.weight': torch.randn(64, 3, 7, 7, generator=g),
          'preact.layer1.0.conv1.weight': torch.randn(64, 64, 1, 1, generator=g),
          'preact.layer1.0.conv3.weight': torch.randn(256, 64, 1, 1, generator=g),
          'deconv_layers.0.weight': torch.randn(2048, 256, 4, 4, generator=g),
          'fc1.weight': torch.randn(1024, 2048, generator=g)}
    return sd, ('preact.layer1.0.conv1.weight: shape (64, 64, 1, 1)',
                'preact.layer1.0.conv3.weight: unknown key', 'fc1.weight: shape (1024, 2048)')


def _hrnet_hybrik():
    g = torch.Generator().manual_seed(0)
    sd = {'preact.conv1.weight': torch.randn(64, 3, 3, 3, generator=g),
          'preact.stage2.0.branches.0.0.conv1.weight': torch.randn(48, 48, 3, 3, generator=g),
          'deconv_layers.0.weight': torch.randn(2048, 256, 4, 4, generator=g)}
    return sd, ('preact.conv1.weight: shape (64, 3, 3, 3)',
                'preact.stage2.0.branches.0.0.conv1.weight: unknown key')


@pytest.mark.parametrize('make', [_resnet50_hybrik, _hrnet_hybrik])
def test_other_depths_are_refused_naming_the_keys(tmp_path, make):
    sd, expected = make()
    src, out = tmp_path / 'other.pth', tmp_path / 'out.pth'
    torch.save(sd, src)
    with pytest.raises(ConversionError, match='not HybrIK\'s ResNet-34') as err:
        convert(str(src), str(out))
    for text in expected:
        assert text in str(err.value), text
    assert 'preact.layer4.2.bn2.weight: missing' in str(err.value) or 'more' in str(err.value)
    assert not out.exists() and os.listdir(tmp_path) == ['other.pth']  # no temporary left


def test_truncated_and_foreign_files_are_refused(tmp_path):
    good = tmp_path / 'good.pth'
    write_hybrik_checkpoint(good, under_model=False)
    data = good.read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 3])
    out = tmp_path / 'out.pth'
    with pytest.raises(ConversionError, match=r'cut\.pth: cannot be read \(truncated or corrupt'):
        convert(str(tmp_path / 'cut.pth'), str(out))
    torch.save({'optimizer': {'lr': torch.tensor(1e-3)}, 'epoch': 3}, tmp_path / 'odd.pth')
    with pytest.raises(ConversionError, match=r"unknown layout: expected a state dict"):
        convert(str(tmp_path / 'odd.pth'), str(out))
    torch.save({'encoder.weight': torch.zeros(2)}, tmp_path / 'other_model.pth')
    with pytest.raises(ConversionError, match=r"unknown layout: neither HybrIK's"):
        convert(str(tmp_path / 'other_model.pth'), str(out))
    assert not out.exists()


class _RunsCode:
    """Unpickling this calls os.system: a harmless touch of a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.mark.parametrize('container', ['torch', 'pickle'])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(tmp_path, container):
    marker = tmp_path / 'pwned'
    src, out = tmp_path / 'evil.pth', tmp_path / 'out.pth'
    payload = {'model': {'preact.conv1.weight': torch.zeros(1)}, 'extra': _RunsCode(marker)}
    if container == 'torch':
        torch.save(payload, src)
    else:
        with open(src, 'wb') as f:
            pickle.dump({'extra': _RunsCode(marker)}, f, protocol=2)
    with pytest.raises(ConversionError, match=r'refused.*(posix|os)\.system.*can run code'):
        convert(str(src), str(out))
    assert not marker.exists()  # the payload was never called
    assert not out.exists()


def test_an_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    src, out = tmp_path / 'hybrik.pth', tmp_path / 'out.pth'
    write_hybrik_checkpoint(src)
    out.write_bytes(b'precious')
    assert main([str(src), str(out)]) == 1
    assert 'out.pth exists; pass --overwrite' in capsys.readouterr().err
    assert out.read_bytes() == b'precious'
    with pytest.raises(ConversionError, match='OUT must differ from IN'):
        convert(str(src), str(src), overwrite=True)
    assert main([str(src), str(out), '--overwrite']) == 0
    assert 'state_dict' in torch.load(out, map_location='cpu', weights_only=True)
    assert sorted(os.listdir(tmp_path)) == ['hybrik.pth', 'out.pth']
