"""The paper's configs end to end on fixture data: public-format fixtures (3DPW pickles,
HumanData files) -> the converters -> configs/unspat_3dpw.py's mixture through
tools/train.py (one iteration of the paper model: ResNet-34, 256x256, T=16, initialised
from a converted-HybrIK-like file of random weights, backbone frozen) -> the test configs
through tools/test.py, with the metric's ground truth checked against the fixture's; and
the same mixture from cached features (tools/extract_features.py ->
configs/unspat_3dpw_features.py)."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from tools import extract_features as extract_tool
from tools import test as test_tool
from tools import train as train_tool
from unspat_mm.datasets.converters.humandata import convert_humandata_file
from unspat_mm.datasets.converters.pw3d import convert_pw3d
from unspat_mm.models.body import SMPLBodyModel
from unspat_mm.registry import MODELS
from unspat_mm.testing import write_humandata_fixture, write_pw3d_fixture

# config annotation file -> (HumanData fixture dataset, image folder = the config's prefix)
HUMANDATA = {'h36m_train': ('h36m', 'h36m'), 'h36m_test': ('h36m', 'h36m'),
             'mpi_inf_3dhp_train': ('mpi_inf_3dhp', 'mpi_inf_3dhp'),
             'mpi_inf_3dhp_test': ('mpi_inf_3dhp', 'mpi_inf_3dhp'),
             'pennaction_train': ('pennaction', 'pennaction'),
             'posetrack_train': ('posetrack', 'posetrack'),
             'insta_variety_train': ('insta_variety', 'insta_variety')}
BATCH = 2  # the paper's 8 fits, but 2 keeps the iteration ~4x quicker on 2 CPU cores


@pytest.fixture(scope='module')
def paper_data(tmp_path_factory):
    """A ``data/`` folder as README "Data" lays it out, converted from public fixtures."""
    root = tmp_path_factory.mktemp('paper_data')
    data = root / 'data'
    truth = {}
    pw3d = write_pw3d_fixture(str(data / '3dpw'), splits=('train', 'test'), num_frames=6)
    convert_pw3d(str(data / '3dpw'), str(data / 'annotations'), splits=('train', 'test'))
    truth['pw3d'] = pw3d
    for i, (name, (dataset, folder)) in enumerate(HUMANDATA.items()):
        fixture = write_humandata_fixture(str(root / 'preprocessed' / f'{name}.npz'), dataset,
                                          num_frames=4, seed=i, image_root=str(data / folder))
        convert_humandata_file(fixture['path'], str(data / 'annotations' / f'{name}.npz'),
                               dataset, image_root=str(data / folder))
        truth[name] = fixture
    return str(data), truth


def loader_options(cfg: Config, options_for) -> list:
    """``--cfg-options`` for every dict inside the config's train/val/test loaders:
    ``options_for(node, key)`` gives the options of the dict ``node`` found at ``key``."""
    options = []

    def visit(node, key):
        if isinstance(node, dict):
            options.extend(options_for(node, key))
            for k, v in node.items():
                visit(v, f'{key}.{k}')
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, f'{key}.{i}')

    for split in ('train', 'val', 'test'):
        visit(cfg.get(f'{split}_dataloader'), f'{split}_dataloader')
    return options


def data_options(cfg: Config, data_root: str) -> list:
    """``--cfg-options`` pointing every dataset of the config's loaders at ``data_root``."""
    return loader_options(cfg, lambda node, key: [f'{key}.data_root={data_root}/']
                          if 'data_root' in node else [])


def cpu_options(standin_model_dir):
    return [f'model.head.body_model.model_dir={standin_model_dir}',
            *[f'{split}_evaluator.body_model.model_dir={standin_model_dir}'
              for split in ('val', 'test')],
            *[f'{split}_dataloader.{k}' for split in ('train', 'val', 'test')
              for k in (f'batch_size={BATCH}', 'num_workers=0', 'persistent_workers=False')]]


@pytest.fixture(scope='module')
def hybrik_converted(standin_model_dir, tmp_path_factory):
    """A stand-in for data/pretrained/hybrik_res34_unspat.pth: the paper model's backbone
    and head (random weights, batch-norm statistics off their defaults), no neck."""
    cfg = copy.deepcopy(Config.fromfile('configs/unspat_3dpw.py').model)
    cfg.head.body_model.model_dir = standin_model_dir
    torch.manual_seed(7)
    model = MODELS.build(cfg)
    for m in model.backbone.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, .1)
            m.running_var.uniform_(.5, 2.)
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith('neck.')}
    path = str(tmp_path_factory.mktemp('pretrained') / 'hybrik_res34_unspat.pth')
    torch.save(dict(state_dict=state), path)
    return path, state


@pytest.fixture(scope='module')
def one_iteration(paper_data, standin_model_dir, hybrik_converted, tmp_path_factory):
    data_root, _ = paper_data
    work_dir = tmp_path_factory.mktemp('paper_work')
    cfg = Config.fromfile('configs/unspat_3dpw.py')

    options = [*data_options(cfg, data_root), *cpu_options(standin_model_dir),
               f'model.init_cfg.checkpoint={hybrik_converted[0]}',
               f'train_dataloader.dataset.length={BATCH}',  # one epoch = one iteration
               # the last epoch validates, over the whole 3DPW test fixture, whose
               # frames without a camera pose have no ground truth (valid=False)
               'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    runner = train_tool.main(['configs/unspat_3dpw.py', '--work-dir', str(work_dir),
                              '--cfg-options', *options])
    return runner, work_dir


def test_paper_mixture_trains_one_iteration(one_iteration, paper_data):
    runner, work_dir = one_iteration
    _, truth = paper_data
    assert runner.iter == 1 and osp.isfile(work_dir / 'epoch_1.pth')
    # the model is the paper's, the data its mixture, as the config states them
    model = runner.model
    assert model.backbone.depth == 34 and model.neck.num_frames == 16
    mixed = runner.train_dataloader.dataset
    groups = [[type(d).__name__ for d in g.datasets] for g in mixed.datasets]
    assert groups == [['PW3DDataset', 'H36MDataset', 'MPIINF3DHPDataset'],
                      ['PennActionDataset', 'PoseTrackDataset', 'InstaVarietyDataset']]
    assert mixed.slots.tolist() == [1, 1]  # 40:60 of 2 slots, largest remainder
    # 3DPW training windows: only targets with a valid camera pose
    pw3d = mixed.datasets[0].datasets[0]
    assert len(pw3d) == int(truth['pw3d']['arrays']['train']['valid'].sum())
    # each 3D group member in proportion to its size (ratios=None)
    assert mixed.datasets[0].slots.tolist() == [len(d) for d in mixed.datasets[0].datasets]
    batch = next(iter(runner.train_dataloader))
    assert batch['inputs'][0].shape == (16, 3, 256, 256)
    assert runner.message_hub.get_scalar('train/loss') is not None
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss) and loss > 0
    # validation ran over every window, frames without ground truth included
    assert np.isfinite(runner.message_hub.get_scalar('val/MPJPE').current())


def test_paper_backbone_is_the_converted_one_and_frozen(one_iteration, hybrik_converted):
    """Table 1: backbone and head start from the converted HybrIK file, the neck fresh;
    after training, every backbone weight and batch-norm statistic is the file's, bit for
    bit, and the optimizer holds no state for them."""
    runner, work_dir = one_iteration
    _, state = hybrik_converted
    model = runner.model
    assert model.freeze_backbone
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state[f'backbone.{key}']), key
    optimizer = runner.optim_wrapper.optimizer
    assert optimizer.state and not any(p in optimizer.state for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    # the head was loaded, then took one Adam step (at most lr per weight)
    lr = runner.cfg.optim_wrapper.optimizer.lr
    step = (model.head.final_conv.weight - state['head.final_conv.weight']).abs().max()
    assert 0 < step <= 1.01 * lr


def test_paper_config_needs_the_converted_hybrik_file(standin_model_dir, tmp_path,
                                                      monkeypatch):
    cfg = copy.deepcopy(Config.fromfile('configs/unspat_3dpw.py').model)
    cfg.head.body_model.model_dir = standin_model_dir
    model = MODELS.build(cfg)
    monkeypatch.chdir(tmp_path)  # no data/pretrained/ here
    with pytest.raises(FileNotFoundError) as error:
        model.init_weights()
    assert ('python tools/model_converters/hybrik_to_unspat.py HYBRIK.pth '
            'data/pretrained/hybrik_res34_unspat.pth') in str(error.value)


def feature_options(cfg: Config, root: str, checkpoint: str) -> list:
    """``--cfg-options`` pointing every ``feature_cfg`` of the loaders at ``root``."""
    return loader_options(cfg, lambda node, key: [
        f'{key}.feature_cfg.root={root}', f'{key}.feature_cfg.checkpoint={checkpoint}']
        if 'feature_cfg' in node else [])


def test_paper_features_config_trains_one_iteration(paper_data, standin_model_dir,
                                                    hybrik_converted, tmp_path):
    """configs/unspat_3dpw_features.py: the mixture of configs/unspat_3dpw.py read as
    cached (T, 512, 8, 8) maps; the model has no backbone, its head comes from the file."""
    data_root, _ = paper_data
    checkpoint, state = hybrik_converted
    root = str(tmp_path / 'features')
    image_cfg = Config.fromfile('configs/unspat_3dpw.py')
    extract_tool.main(['configs/unspat_3dpw.py', checkpoint, '--feature-root', root,
                       '--workers', '0', '--device', 'cpu', '--batch-size', '16',
                       '--cfg-options', *data_options(image_cfg, data_root)])
    cfg = Config.fromfile('configs/unspat_3dpw_features.py')
    assert [d['ann_file'] for d in _leaves(cfg.train_dataloader.dataset)] == \
        [d['ann_file'] for d in _leaves(image_cfg.train_dataloader.dataset)]
    options = [*data_options(cfg, data_root), *cpu_options(standin_model_dir),
               *feature_options(cfg, root, checkpoint), f'model.init_cfg.checkpoint={checkpoint}',
               f'train_dataloader.dataset.length={BATCH}', 'train_cfg.max_epochs=1']
    runner = train_tool.main(['configs/unspat_3dpw_features.py', '--work-dir',
                              str(tmp_path / 'work'), '--cfg-options', *options])
    assert runner.iter == 1 and runner.model.backbone is None
    batch = next(iter(runner.train_dataloader))
    assert batch['inputs'][0].shape == (16, 512, 8, 8)
    assert batch['inputs'][0].dtype == torch.float16
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').current())
    assert np.isfinite(runner.message_hub.get_scalar('val/MPJPE').current())
    saved = torch.load(str(tmp_path / 'work' / 'epoch_1.pth'), weights_only=True)
    assert not any(k.startswith('backbone.') for k in saved['state_dict'])


def test_paper_test_configs(one_iteration, paper_data, standin_model_dir, tmp_path):
    """configs/test/{3dpw,h36m,mpi_inf_3dhp}.py: the metric's ground truth is the
    fixture's (3DPW: J14 of the body model at the fixture's theta/beta; H36M: the mocap
    J14; 3DHP: the 17 joints), on the first windows of each test set."""
    _, work_dir = one_iteration
    data_root, truth = paper_data
    ckpt = str(work_dir / 'epoch_1.pth')
    body = SMPLBodyModel(standin_model_dir)
    for name, expected_key in (('3dpw', 'joints14'), ('h36m', 'gt_joints14'),
                               ('mpi_inf_3dhp', 'gt_joints17')):
        config = f'configs/test/{name}.py'
        dump = tmp_path / f'{name}.npz'
        options = [*data_options(Config.fromfile(config), data_root),
                   *cpu_options(standin_model_dir), f'test_dataloader.dataset.indices={BATCH}']
        metrics, _ = test_tool.main([config, ckpt, '--work-dir', str(tmp_path / name),
                                     '--dump', str(dump), '--cfg-options', *options])
        assert np.isfinite(metrics['MPJPE']) and metrics['PA-MPJPE'] < metrics['MPJPE']
        out = np.load(dump)
        if name == '3dpw':
            ref = truth['pw3d']['arrays']['test']
            with torch.no_grad():
                gt = body(torch.as_tensor(ref['theta'][:BATCH]).float(),
                          torch.as_tensor(ref['betas'][:BATCH]).float())['joints14'].numpy()
        else:
            ref = truth[f'{name}_test']['arrays']
            gt = ref[expected_key][:BATCH]
        assert out['sequence_id'].tolist() == ref['sequence_id'][:BATCH].tolist()
        assert out['frame_index'].tolist() == ref['frame_index'][:BATCH].tolist()
        np.testing.assert_allclose(out['gt_joints'], gt, atol=1e-5)


def _leaves(dataset_cfg):
    if dataset_cfg['type'] == 'MixedVideoDataset':
        return [leaf for d in dataset_cfg['datasets'] for leaf in _leaves(d)]
    return [dataset_cfg]


def test_wo3dpw_config_drops_only_3dpw():
    main = Config.fromfile('configs/unspat_3dpw.py')
    wo = Config.fromfile('configs/unspat_3dpw_wo3dpw.py')
    kept = [d for d in _leaves(main.train_dataloader.dataset) if d['type'] != 'PW3DDataset']
    assert _leaves(wo.train_dataloader.dataset) == kept and len(kept) == 5
    for key in ('model', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_dataloader',
                'test_dataloader', 'test_evaluator'):
        assert wo[key] == main[key], key
    assert {k: v for k, v in wo.train_dataloader.dataset.items() if k != 'datasets'} == \
        {k: v for k, v in main.train_dataloader.dataset.items() if k != 'datasets'}


@pytest.mark.parametrize('config, cls', [('configs/unspat_3dpw.py', 'PW3DDataset'),
                                         ('configs/test/3dpw.py', 'PW3DDataset'),
                                         ('configs/test/h36m.py', 'H36MDataset'),
                                         ('configs/test/mpi_inf_3dhp.py', 'MPIINF3DHPDataset')])
def test_test_configs_use_each_benchmarks_protocol(config, cls):
    """The evaluator's joint set and root are the ones the dataset class declares; the
    paper's T, crop size and batch; every frame evaluated (stride 1, test mode)."""
    from unspat_mm.registry import DATASETS, TRANSFORMS
    cfg = Config.fromfile(config)
    dataset = cfg.test_dataloader.dataset
    meta = DATASETS.get(cls).METAINFO
    assert dataset.type == cls and dataset.test_mode and dataset.get('stride', 1) == 1
    assert (cfg.test_evaluator.joint_set, cfg.test_evaluator.root) == (
        meta['eval_joint_set'], meta['eval_root'])
    assert dataset.num_frames == 16 and cfg.test_dataloader.batch_size == 8
    assert [TRANSFORMS.build(t).input_size for t in dataset.pipeline
            if t['type'] == 'VideoBBoxCrop'] == [(256, 256)]
    if cls != 'PW3DDataset':  # the benchmark's joints must not be replaced by an SMPL fit
        assert 'smpl' not in dataset.labels
    train = cfg.train_dataloader
    assert train.batch_size == 8 and train.sampler.type == 'DrawIdSampler'
    assert [t.type for t in train.dataset.datasets[0].datasets[0].pipeline] == [
        'LoadVideoFrames', 'RandomVideoFlip', 'VideoBBoxCrop', 'RandomVideoOccluders',
        'VideoColorJitter', 'PackVideoMeshInputs']
    assert cfg.model.freeze_backbone and cfg.model.init_cfg == dict(
        type='Pretrained', checkpoint='data/pretrained/hybrik_res34_unspat.pth')
