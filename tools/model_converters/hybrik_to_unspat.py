"""Convert HybrIK's ResNet-34 checkpoint into an unspat-mm checkpoint (paper §3.4).

    python tools/model_converters/hybrik_to_unspat.py IN OUT [--overwrite]

IN is one of
  * HybrIK's own checkpoint (``Simple3DPoseBaseSMPLCam``, e.g. ``pretrained_w_cam.pth``,
    or the camera-less ``Simple3DPoseBaseSMPL``): a plain state dict, or one under
    ``'model'``, keys ``preact.*`` / ``deconv_layers.*`` / ``final_layer.*`` / ``fc1`` /
    ``fc2`` / ``dec*`` / ``init_*`` / ``smpl.*``, possibly behind a ``module.`` prefix;
  * mmhuman3d's HybrIK ResNet-34 (mmcv layout): ``{'state_dict': {'backbone.*',
    'head.*', 'smpl.*'}, 'meta': ..., ...}``.
It is read with ``torch.load(weights_only=True)`` (plus numpy's data classes): a file
that needs anything else is refused, nothing of it is executed.

OUT gets ``{'state_dict': ..., 'meta': {...}}`` (loads with ``weights_only=True`` and with
mmengine's ``load_checkpoint`` / ``load_from``): the backbone under mmpose's ResNet names
(``backbone.conv1``, ``backbone.layer1.0.conv1``, ...) and the head of
``IKMeshHead(convention='hybrik')``; the neck is not in the file (it starts freshly
initialised). Every source key is mapped or deliberately dropped (the SMPL layer's
buffers, an ImageNet classifier); any other key, a wrong shape (another depth, HRNet)
or an unknown layout is an error that names the key, and nothing is written. OUT is
written atomically (a temporary file, then a rename) and never over an existing file
without ``--overwrite``. Default location for the paper configs:
``data/pretrained/hybrik_res34_unspat.pth`` (docs/hybrik_checkpoint.md).
"""
import argparse
import os
import os.path as osp
import pickle
import re
import sys
import tempfile
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

DEFAULT_OUT = 'data/pretrained/hybrik_res34_unspat.pth'
FEATURE_CHANNELS, DECONV_CHANNELS, NUM_JOINTS, DEPTH_BINS = 512, 256, 29, 64
BACKBONE_CFG = dict(type='ResNet', depth=34, out_indices=(3, ))  # the paper config's
# deliberately dropped: source prefix -> why
DROPPED = {'smpl.': "the SMPL layer's buffers (unspat-mm builds its own body model)",
           'preact.fc.': 'an ImageNet classifier (unused: the backbone ends at layer4)',
           'backbone.fc.': 'an ImageNet classifier (unused: the backbone ends at layer4)'}
OPTIONAL_HEAD = ('deccam', 'decsigma', 'init_cam')  # absent from camera-less models
GROUPS = ('backbone', 'deconv', 'final conv', 'regressors')


class ConversionError(ValueError):
    """IN cannot be converted (unsafe, unreadable, or not HybrIK's ResNet-34)."""


def hybrik_head_shapes() -> Dict[str, Tuple[int, ...]]:
    """HybrIK's head parameters and buffers (its own names) for ResNet-34 features."""
    from unspat_mm.models.heads.hybrik_convention import HYBRIK_HIDDEN as hidden
    shapes, in_channels = {}, FEATURE_CHANNELS
    for conv in (0, 3, 6):  # (ConvTranspose2d 4x4 s2 no bias, BatchNorm2d, ReLU) x 3
        shapes[f'deconv_layers.{conv}.weight'] = (in_channels, DECONV_CHANNELS, 4, 4)
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            shapes[f'deconv_layers.{conv + 1}.{name}'] = (DECONV_CHANNELS, )
        shapes[f'deconv_layers.{conv + 1}.num_batches_tracked'] = ()
        in_channels = DECONV_CHANNELS
    shapes['final_layer.weight'] = (NUM_JOINTS * DEPTH_BINS, DECONV_CHANNELS, 1, 1)
    shapes['final_layer.bias'] = (NUM_JOINTS * DEPTH_BINS, )
    for name, (out, inp) in dict(fc1=(hidden, FEATURE_CHANNELS), fc2=(hidden, hidden),
                                 decshape=(10, hidden), decphi=(46, hidden),
                                 deccam=(3, hidden), decsigma=(NUM_JOINTS, hidden)).items():
        shapes[f'{name}.weight'], shapes[f'{name}.bias'] = (out, inp), (out, )
    shapes['init_shape'], shapes['init_cam'] = (10, ), (3, )
    return shapes


def backbone_shapes() -> Dict[str, Tuple[int, ...]]:
    """mmpose's ResNet-34 state dict (= torchvision's and HybrIK's ``preact`` names)."""
    import unspat_mm  # noqa: F401  (registers the scope)
    from unspat_mm.registry import MODELS
    return {k: tuple(v.shape) for k, v in MODELS.build(BACKBONE_CFG).state_dict().items()}


def _numpy_data_globals() -> list:
    # numpy's array/dtype/scalar reconstruction: data only (what mmcv metas may hold)
    from unspat_mm.engine.checkpoint import _numpy_data_globals as numpy_globals
    return numpy_globals()


def read_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], str]:
    """The state dict in ``path`` and its layout (``'hybrik'`` or ``'mmhuman3d'``).

    Raises:
        ConversionError: missing, unsafe (would need full unpickling), truncated or
            corrupt file, or a layout that is neither HybrIK's nor mmhuman3d's.
    """
    if not osp.isfile(path):
        raise ConversionError(f'{path}: no such file.')
    try:
        with torch.serialization.safe_globals(_numpy_data_globals()):
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        names = sorted(set(re.findall(r'GLOBAL ([\w.]+)', str(err))))
        if names:
            raise ConversionError(
                f'{path}: refused. Besides tensors and containers the file asks for '
                f'{", ".join(names)}, which only full unpickling provides, and full '
                'unpickling can run code. HybrIK and mmhuman3d checkpoints hold tensors '
                'only: this is not one of them (or it was tampered with).') from None
        raise ConversionError(f'{path}: not a readable torch checkpoint (truncated, corrupt '
                              f'or another format): {str(err).strip().splitlines()[-1]}'
                              ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ConversionError(f'{path}: cannot be read (truncated or corrupt?): '
                              f'{type(err).__name__}: {err}') from None
    state = checkpoint
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                state = checkpoint[key]
                break
    if not isinstance(state, dict) or not state or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        top = list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ConversionError(f'{path}: unknown layout: expected a state dict of tensors, '
                              f"plain or under 'state_dict' / 'model'; found {top}.")
    state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                        for k, v in state.items())
    if any(k.startswith('preact.') for k in state):
        return state, 'hybrik'
    if any(k.startswith('backbone.') for k in state) and any(k.startswith('head.') for k in
                                                             state):
        return state, 'mmhuman3d'
    raise ConversionError(f'{path}: unknown layout: neither HybrIK\'s (preact.*, '
                          "deconv_layers.*, ...) nor mmhuman3d's (backbone.*, head.*); "
                          f'first keys: {list(state)[:6]}.')


def _target(key: str, layout: str) -> Tuple[str, str, str]:
    """(group, HybrIK-style source name, unspat-mm key) of a source key, or group
    ``'dropped'`` / ``'unknown'``."""
    from unspat_mm.models.heads.hybrik_convention import HEAD_BUFFERS, HEAD_MODULES
    for prefix in DROPPED:
        if key.startswith(prefix):
            return 'dropped', key, ''
    backbone_prefix = 'preact.' if layout == 'hybrik' else 'backbone.'
    if key.startswith(backbone_prefix):
        name = key[len(backbone_prefix):]
        return 'backbone', name, f'backbone.{name}'
    name = key if layout == 'hybrik' else key[len('head.'):] if key.startswith('head.') else ''
    if name in HEAD_BUFFERS:
        return 'regressors', name, f'head.{name}'
    module, _, rest = name.partition('.')
    if module in HEAD_MODULES and rest:
        group = dict(deconv_layers='deconv', final_layer='final conv').get(module, 'regressors')
        return group, name, f'head.{HEAD_MODULES[module]}.{rest}'
    return 'unknown', key, ''


def convert_state_dict(state: Dict[str, torch.Tensor], layout: str
                       ) -> Tuple['OrderedDict[str, torch.Tensor]', Dict[str, List[str]]]:
    """Map HybrIK's (or mmhuman3d's) keys onto unspat-mm's, checking every shape.

    Returns:
        tuple: the unspat-mm state dict and ``{group: [source keys]}`` for the groups
        of :data:`GROUPS`, ``'dropped'`` and ``'not in source'`` (unspat-mm keys the
        model keeps from its own initialisation: the camera-less models' camera and
        sigma regressors).

    Raises:
        ConversionError: unknown keys, wrong shapes or missing tensors, all named.
    """
    expected_backbone, expected_head = backbone_shapes(), hybrik_head_shapes()
    converted, groups, problems = OrderedDict(), {g: [] for g in GROUPS + ('dropped', )}, []
    for key, value in state.items():
        group, name, target = _target(key, layout)
        if group == 'unknown':
            problems.append(f'{key}: unknown key (not in HybrIK\'s ResNet-34 SMPL model)')
            continue
        groups[group].append(key)
        if group == 'dropped':
            continue
        expected = (expected_backbone if group == 'backbone' else expected_head).get(name)
        if expected is None:
            problems.append(f'{key}: unknown key (not in a ResNet-34 {group})')
        elif tuple(value.shape) != expected:
            problems.append(f'{key}: shape {tuple(value.shape)} in the file, ResNet-34 '
                            f'HybrIK has {expected}')
        else:
            converted[target] = value.detach().clone().contiguous()
    seen = {_target(k, layout)[1] for k in state}
    missing = [f'preact.{n}' for n in expected_backbone if n not in seen] + \
              [n for n in expected_head if n not in seen and n.split('.')[0] not in OPTIONAL_HEAD]
    problems += [f'{n}: missing from the file' for n in missing]
    if problems:
        more = f'\n  ... and {len(problems) - 12} more' if len(problems) > 12 else ''
        shown = '\n  '.join(problems[:12]) + more
        raise ConversionError(
            f'not HybrIK\'s ResNet-34 SMPL model ({len(problems)} problems; only the ResNet-34 '
            f'checkpoints convert, not ResNet-50/HRNet ones):\n  {shown}')
    groups['not in source'] = [n for n in expected_head if n.split('.')[0] in OPTIONAL_HEAD
                               and n not in seen]
    return converted, groups


def _meta(src: str, layout: str, groups: Dict[str, List[str]]) -> dict:
    from unspat_mm.models.heads import hybrik_convention as hc
    with_camera = not any(k.startswith('deccam') for k in groups['not in source'])
    # HybrIK's camera model: depth factor 2.2 m; its camera-less models (and mmhuman3d's,
    # trained from ImageNet weights with ImageNet's RGB statistics) use 2.0 m.
    imagenet_rgb = ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
    mean, std = (hc.HYBRIK_PIXEL_MEAN, hc.HYBRIK_PIXEL_STD) if layout == 'hybrik' \
        else imagenet_rgb
    return dict(converted_from=osp.basename(src), source_layout=layout,
                converter='tools/model_converters/hybrik_to_unspat.py',
                head_convention='hybrik',
                depth_factor=hc.HYBRIK_DEPTH_FACTOR if with_camera else 2.0,
                pixel_mean=[float(m) for m in mean], pixel_std=[float(s) for s in std],
                dropped=list(groups['dropped']), not_in_source=list(groups['not in source']),
                neck='not in the file: freshly initialised')


def _write_atomically(obj: dict, out: str) -> None:
    directory = osp.dirname(osp.abspath(out))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{osp.basename(out)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        torch.load(tmp, map_location='cpu', weights_only=True)  # what the users will do
        os.replace(tmp, out)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def convert(src: str, out: str, overwrite: bool = False, log=print) -> dict:
    """Convert ``src`` into ``out``; see the module docstring.

    Returns:
        dict: the written checkpoint.

    Raises:
        ConversionError: (nothing is written) ``out`` exists without ``overwrite`` or is
            ``src``, or ``src`` is unsafe, unreadable or not HybrIK's ResNet-34.
    """
    if osp.exists(out) and osp.realpath(out) == osp.realpath(src):
        raise ConversionError(f'{out}: OUT must differ from IN (the source is never replaced).')
    if osp.exists(out) and not overwrite:
        raise ConversionError(f'{out} exists; pass --overwrite to replace it.')
    state, layout = read_checkpoint(src)
    log(f'{src}: {layout} layout, {len(state)} tensors')
    converted, groups = convert_state_dict(state, layout)
    for group in GROUPS:
        count = sum(state[k].numel() for k in groups[group])
        log(f'  {group:<11} {len(groups[group]):>4} tensors, {count / 1e6:6.2f}M values')
    for prefix, why in DROPPED.items():
        dropped = [k for k in groups['dropped'] if k.startswith(prefix)]
        if dropped:
            log(f'  {"dropped":<11} {len(dropped):>4} tensors {prefix}*: {why}')
    if groups['not in source']:
        log(f'  not in the source, left to the model\'s initialisation: '
            f'{", ".join(sorted({k.split(".")[0] for k in groups["not in source"]}))}')
    checkpoint = dict(state_dict=converted, meta=_meta(src, layout, groups))
    _write_atomically(checkpoint, out)
    log(f'wrote {out} ({len(converted)} tensors; the neck is not in it). Head conventions: '
        f"depth factor {checkpoint['meta']['depth_factor']} m, pixel mean "
        f"{[round(m, 3) for m in checkpoint['meta']['pixel_mean']]} (docs/hybrik_checkpoint.md)")
    return checkpoint


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', metavar='IN', help="HybrIK's or mmhuman3d's ResNet-34 checkpoint")
    parser.add_argument('out', metavar='OUT', nargs='?', default=DEFAULT_OUT,
                        help=f'unspat-mm checkpoint to write (default: {DEFAULT_OUT})')
    parser.add_argument('--overwrite', action='store_true', help='replace OUT if it exists')
    args = parser.parse_args(argv)
    try:
        convert(args.src, args.out, overwrite=args.overwrite)
    except ConversionError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
