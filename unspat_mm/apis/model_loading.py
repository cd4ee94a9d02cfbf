"""Build an UNSPAT model for inference from a config and a weights-only checkpoint."""
import copy
import logging
import os.path as osp
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from unspat_mm.engine.checkpoint import from_weights_only_safe, load_weights_only, model_state_dict
from unspat_mm.models.body.smpl_layer import resolve_body_model_file
from unspat_mm.registry import MODELS

__all__ = ['InferenceSettings', 'init_unspat_model', 'inference_settings', 'load_config',
           'checkpoint_summary', 'make_standin_body_model']


@dataclass
class InferenceSettings:
    """What inference takes from a config (its test dataset and pipeline).

    Attributes:
        num_frames (int): T, frames per window (the test dataset's ``num_frames``).
        frame_interval (int): frames between consecutive window positions.
        crop_cfg (dict): the test pipeline's ``VideoBBoxCrop`` (input size, padding).
        config_name (str): the config file's base name.
    """
    num_frames: int
    frame_interval: int
    crop_cfg: dict = field(default_factory=dict)
    config_name: str = ''


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """A :class:`Config` from a path (or a copy of a Config), with overrides merged."""
    if isinstance(config, (str, bytes)) or hasattr(config, '__fspath__'):
        config = str(config)
        if not osp.isfile(config):
            raise FileNotFoundError(f'Config file {config!r} does not exist (e.g. '
                                    'configs/unspat_synthetic.py).')
        cfg = Config.fromfile(config)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        raise TypeError(f'config must be a path or an mmengine Config, got {type(config)}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'{cfg.filename}: not a model config (no `model`)')
    return cfg


def _find_crop(pipeline) -> dict:
    for step in pipeline or []:
        if str(step.get('type', '')).split('.')[-1] == 'VideoBBoxCrop':
            return dict(step)
    return {}


def inference_settings(cfg: Config) -> InferenceSettings:
    """Window and crop settings of ``cfg``'s test data (the evaluation protocol), so
    that inference windows and crops are exactly the ones ``tools/test.py`` scores."""
    dataset = ((cfg.get('test_dataloader') or {}).get('dataset') or {})
    num_frames = dataset.get('num_frames', cfg.get('num_frames'))
    if num_frames is None:
        num_frames = cfg.model.neck.get('num_frames', 16)
    interval = dataset.get('frame_interval', cfg.get('frame_interval', 1))
    crop = _find_crop(dataset.get('pipeline')) or _find_crop(cfg.get('test_pipeline'))
    if not crop:
        size = cfg.get('input_size', (256, 256))
        crop = dict(type='VideoBBoxCrop', input_size=tuple(size))
    # inference crops around its own boxes: no augmentation, whatever the config says
    crop.update(bbox_key='bbox', scale_factor=0., rot_factor=0., rot_prob=0., shift_factor=0.)
    name = osp.splitext(osp.basename(cfg.filename or ''))[0]
    return InferenceSettings(int(num_frames), int(interval), crop, name)


def make_standin_body_model(model_dir: str) -> bool:
    """Write the stand-in mannequin (NOT SMPL) into ``model_dir`` unless it holds a body
    model; returns whether the folder then holds the stand-in. The one place the apis
    reach the stand-in generator."""
    from unspat_mm.datasets.synthetic import ensure_standin_body_model
    return ensure_standin_body_model(model_dir)


def _prepare_body_model(cfg: Config, body_model_dir: Optional[str]) -> Tuple[str, bool]:
    body = cfg.model.head.body_model
    if body_model_dir is not None:
        body.model_dir = body_model_dir
    elif cfg.get('standin_body_model_dir') and body.model_dir == cfg.standin_body_model_dir:
        make_standin_body_model(body.model_dir)  # the embedded default asks for it
    try:
        _, is_standin = resolve_body_model_file(body.model_dir, body.get('gender', 'neutral'),
                                                body.get('allow_pickle', False))
    except FileNotFoundError as err:
        raise FileNotFoundError(f'{err} Or pass body_model_dir (demo: --body-model-dir DIR).'
                                ) from err
    return body.model_dir, is_standin


def checkpoint_summary(meta: dict) -> str:
    """One line saying what a checkpoint was trained with (from mmengine's meta)."""
    meta = meta or {}
    dataset_meta = meta.get('dataset_meta') or {}
    parts = []
    if meta.get('experiment_name'):
        parts.append(f'experiment {meta["experiment_name"]}')
    if dataset_meta.get('dataset_name'):
        parts.append(f'dataset {dataset_meta["dataset_name"]}')
    if dataset_meta.get('body_model_is_standin'):
        parts.append('ground truth of the STAND-IN body model')
    if meta.get('iter') is not None or meta.get('epoch') is not None:
        parts.append(f'epoch {meta.get("epoch")}, iteration {meta.get("iter")}')
    return ', '.join(parts) if parts else 'no training metadata in the checkpoint'


def _check_state_dict(model: torch.nn.Module, state: dict, checkpoint: str, cfg_name: str,
                      summary: str) -> None:
    own = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}'
                  for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if mismatched or missing or unexpected:
        lines = mismatched[:5] + [f'missing {k}' for k in missing[:3]] + [
            f'unexpected {k}' for k in unexpected[:3]]
        raise ValueError(
            f'Checkpoint {checkpoint!r} does not fit the model of config {cfg_name!r} '
            f'({len(mismatched)} shape mismatches, {len(missing)} missing and '
            f'{len(unexpected)} unexpected weights; e.g. ' + '; '.join(lines) + '). It was '
            f'trained with: {summary}. Pass the config it was trained with.')


def init_unspat_model(config: Union[str, Config], checkpoint: Optional[str] = None,
                      device: str = 'cpu', body_model_dir: Optional[str] = None,
                      cfg_options: Optional[dict] = None):
    """Build the model of ``config`` in eval mode and load ``checkpoint`` into it.

    The checkpoint is read with torch's ``weights_only=True`` (nothing is unpickled
    beyond tensors and plain containers; see :mod:`unspat_mm.engine.checkpoint`), and
    must fit the config exactly (a shape mismatch is an error naming the weights).

    Args:
        config (str | Config): model config (e.g. ``configs/unspat_synthetic.py``).
        checkpoint (str, optional): ``.pth`` written by training; None keeps the
            initialised weights (tests, benchmarks).
        device (str): torch device. Defaults to ``'cpu'``.
        body_model_dir (str, optional): body model folder, overriding the config's.
        cfg_options (dict, optional): config overrides.

    Returns:
        tuple: ``(model, cfg, info)``; ``info`` holds ``settings``
        (:class:`InferenceSettings`), ``meta`` (the checkpoint's), ``summary`` (str),
        ``is_standin`` (bool) and ``body_model_dir``.
    """
    cfg = load_config(config, cfg_options)
    model_dir, is_standin = _prepare_body_model(cfg, body_model_dir)
    settings = inference_settings(cfg)
    model = MODELS.build(cfg.model)
    meta = {}
    if checkpoint is not None:
        raw = from_weights_only_safe(load_weights_only(checkpoint, map_location='cpu'))
        if not isinstance(raw, dict):
            raise ValueError(f'Checkpoint {checkpoint!r} holds a {type(raw).__name__}, not a '
                             'dict with a state_dict')
        meta = raw.get('meta') or {}
        state = model_state_dict(raw)
        summary = checkpoint_summary(meta)
        _check_state_dict(model, state, checkpoint, settings.config_name, summary)
        model.load_state_dict(state, strict=True)
    else:
        summary = 'no checkpoint: initialised weights'
    print_log(f'UNSPAT model of {settings.config_name} (T={settings.num_frames}, interval '
              f'{settings.frame_interval}); weights: {summary}', logger='current',
              level=logging.INFO)
    if is_standin:
        print_log('!' * 79 + f'\nThe body model in {model_dir} is the STAND-IN mannequin, NOT '
                  'SMPL: meshes and joints are not SMPL outputs.\n' + '!' * 79,
                  logger='current', level=logging.WARNING)
    model = model.to(device).eval()
    info = dict(settings=settings, meta=meta, summary=summary, is_standin=is_standin,
                body_model_dir=model_dir, config_name=settings.config_name)
    return model, cfg, info
