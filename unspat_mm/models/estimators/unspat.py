"""The UNSPAT estimator (paper Figure 1)."""
import contextlib
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from einops import rearrange
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.structures import BaseDataElement
from torch import Tensor

from unspat_mm.engine.checkpoint import model_state_dict
from unspat_mm.registry import MODELS

# Ground-truth fields the head's loss reads from each data sample (see IKMeshHead.loss).
TARGET_FIELDS = ('keypoints3d', 'keypoints3d_valid', 'keypoints2d', 'keypoints2d_valid',
                 'theta', 'betas', 'smpl_valid')
_REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'open-mmlab://', 'mmcls://')
# how the paper configs' initialisation file is made (README "Data", docs/cached_features.md)
HYBRIK_CONVERTER = 'tools/model_converters/hybrik_to_unspat.py'


def _init_cfgs(init_cfg) -> list:
    return [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg or [])


def _is_pretrained(cfg: dict) -> bool:
    return cfg.get('type') in ('Pretrained', 'PretrainedInit')


def _check_local_init(owner: str, init_cfg) -> None:
    for cfg in _init_cfgs(init_cfg):
        checkpoint = cfg.get('checkpoint')
        if isinstance(checkpoint, str) and checkpoint.startswith(_REMOTE_PREFIXES):
            raise ValueError(
                f'{owner} init_cfg.checkpoint={checkpoint!r} would be downloaded; unspat-mm '
                'only initialises from a local file you give (e.g. HybrIK converted with '
                f'{HYBRIK_CONVERTER}, or a checkpoint made safe with '
                'tools/misc/make_checkpoint_safe.py).')


@MODELS.register_module()
class UNSPAT(BaseModel):
    """Uncertainty-guided spatiotemporal transformer for video mesh recovery.

    ``loss`` and ``predict`` follow Figure 1: per-frame backbone features ->
    SAM alignment -> uncertainty maps -> Space2Batch transformer (the neck) ->
    3D heatmaps, soft-argmax, twist-swing IK and SMPL (the head).

    Args:
        backbone (dict, optional): per-frame backbone config (paper: mmpose ``ResNet``,
            depth 34, ``out_indices=(3,)``), applied to (B*T, 3, H, W); ``None`` when the
            data are pre-extracted feature clips (Table 1 protocol).
        neck (dict): :class:`~unspat_mm.models.necks.UNSPATNeck` config.
        head (dict): :class:`~unspat_mm.models.heads.IKMeshHead` config.
        data_preprocessor (dict, optional): :class:`VideoDataPreprocessor` config.
            Defaults to None.
        channels_last (bool): run the backbone on channels-last (NHWC) tensors and
            weights. Same results, faster convolutions: oneDNN on CPU, tensor cores on
            GPU. The backbone's output is made contiguous again for the neck.
            Defaults to False.
        freeze_backbone (bool): the paper's Table 1 protocol, features "extracted from a
            pre-trained network without fine-tuning": every backbone parameter gets
            ``requires_grad=False`` (so the optimizer never gets a gradient, hence no
            state, for it), the backbone stays in eval mode whatever ``train()`` says
            (batch-norm statistics unchanged) and runs under ``torch.no_grad()`` (no
            autograd graph, no stored activations). Covers the whole backbone, stem
            included, whatever its type (mmpose ResNet's ``frozen_stages=4,
            norm_eval=True`` would freeze weights and statistics too, but still run the
            forward with autograd bookkeeping). No effect without a backbone.
            Defaults to False.
        init_cfg (dict, optional): mmengine init configs. A ``dict(type='Pretrained',
            checkpoint=PATH)`` is loaded by :meth:`load_pretrained`, partially: a
            converted HybrIK file (``backbone.*``, ``head.*``) leaves the neck freshly
            initialised. A missing file is an error at ``init_weights`` (the runner's
            start-up), not at build time, so that testing a trained checkpoint does not
            need it. Defaults to None.
    """

    def __init__(self, backbone: Optional[dict], neck: dict, head: dict,
                 data_preprocessor: Optional[dict] = None, channels_last: bool = False,
                 freeze_backbone: bool = False, init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):  # resolve in our scope, whatever the default
            data_preprocessor = MODELS.build(data_preprocessor)
        _check_local_init('model', init_cfg)
        _check_local_init('backbone', (backbone or {}).get('init_cfg'))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone) if backbone is not None else None
        self.channels_last = channels_last and self.backbone is not None
        if self.channels_last:  # later in-place (re)initialisation keeps the layout
            self.backbone.to(memory_format=torch.channels_last)
        self.freeze_backbone = bool(freeze_backbone) and self.backbone is not None
        if self.freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)

    def train(self, mode: bool = True) -> 'UNSPAT':
        """``nn.Module.train``; a frozen backbone stays in eval mode (batch norm uses and
        keeps its running statistics)."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """(B, T, 3, H, W) normalised frames -> (B, T, C, h, w) feature maps
        (or pre-extracted features, passed through)."""
        if self.backbone is None:
            return inputs
        frames = rearrange(inputs, 'b t c h w -> (b t) c h w')
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        with torch.no_grad() if self.freeze_backbone else contextlib.nullcontext():
            feats = self.backbone(frames)
        feats = feats[-1] if isinstance(feats, (tuple, list)) else feats
        if self.channels_last:
            feats = feats.contiguous()
        return rearrange(feats, '(b t) c h w -> b t c h w', b=inputs.shape[0])

    # -- initialisation -----------------------------------------------------------------
    def init_weights(self) -> None:
        """mmengine's initialisation, then the ``Pretrained`` file of ``init_cfg`` (if
        any) through :meth:`load_pretrained`.

        Raises:
            FileNotFoundError: the file does not exist; the message says how the paper
                configs' file is made.
        """
        cfgs = _init_cfgs(self.init_cfg)
        pretrained = [c['checkpoint'] for c in cfgs if _is_pretrained(c)]
        if not pretrained:
            return super().init_weights()
        path = osp.expanduser(pretrained[-1])
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'UNSPAT init_cfg: checkpoint {path!r} does not exist. The paper configs '
                "start from HybrIK's ResNet-34 backbone and head; convert HybrIK's "
                f'checkpoint once with `python {HYBRIK_CONVERTER} HYBRIK.pth {path}`, or '
                'point model.init_cfg.checkpoint at your converted file (or set '
                'model.init_cfg=None to train from scratch, which is not the paper).')
        others = [c for c in cfgs if not _is_pretrained(c)]
        init_cfg, self.init_cfg = self.init_cfg, others or None
        try:
            super().init_weights()  # children and non-pretrained inits
        finally:
            self.init_cfg = init_cfg
        self.load_pretrained(path)

    def load_pretrained(self, path: str) -> Dict[str, List[str]]:
        """Load an unspat-mm (e.g. converted HybrIK) checkpoint partially.

        Keys are matched by name and shape: every backbone key must be in the file (a
        frozen random backbone would be silent nonsense); head keys the file lacks keep
        their initialisation (logged); the neck may be absent altogether (HybrIK has
        none). ``backbone.*`` keys are ignored when the model reads cached features
        (``backbone=None``). A key this model does not have is an error: the file was
        made for another architecture.

        Returns:
            dict: ``loaded``, ``kept`` (keys left as initialised) and ``ignored`` lists.
        """
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        self._check_conventions(path, checkpoint.get('meta') or {})
        state = model_state_dict(checkpoint)
        ignored = [k for k in state if k.startswith('backbone.') and self.backbone is None]
        state = {k: v for k, v in state.items() if k not in ignored}
        own = self.state_dict()
        unexpected = [k for k in state if k not in own]
        if unexpected:
            raise KeyError(f'{path} holds {len(unexpected)} weights this model does not have '
                           f'(e.g. {unexpected[:5]}): it was made for another architecture. '
                           f'Convert HybrIK checkpoints with {HYBRIK_CONVERTER}.')
        missing = [k for k in own if k not in state]
        missing_backbone = [k for k in missing if k.startswith('backbone.')
                            and not k.endswith('num_batches_tracked')]
        if missing_backbone:
            raise KeyError(f'{path} lacks {len(missing_backbone)} backbone weights (e.g. '
                           f'{missing_backbone[:5]}); a backbone that is not loaded would be '
                           'trained from scratch or, frozen, stay random.')
        self._loading_pretrained = True
        try:
            self.load_state_dict(state, strict=False)  # shape mismatches raise
        finally:
            self._loading_pretrained = False
        kept = [k for k in missing if not k.endswith('num_batches_tracked')]
        note = '; its backbone is ignored (cached features)' if ignored else ''
        print_log(f'UNSPAT: loaded {sorted({k.split(".")[0] for k in state})} from {path}; '
                  f'kept as initialised: {sorted({k.split(".")[0] for k in kept})} '
                  f'({len(kept)} tensors){note}.', logger='current')
        return dict(loaded=sorted(state), kept=kept, ignored=ignored)

    def _check_conventions(self, path: str, meta: dict) -> None:
        """The depth factor and the pixel statistics a converted file was trained with
        (``meta`` of ``tools/model_converters/hybrik_to_unspat.py``) must be this model's:
        otherwise its keypoints come out scaled and its features off, silently."""
        wrong = []
        if 'depth_factor' in meta and abs(meta['depth_factor'] - self.head.cube_size) > 1e-6:
            wrong.append(f'model.head.cube_size={meta["depth_factor"]}')
        preprocessor = self.data_preprocessor if self.backbone is not None else None
        for key in ('mean', 'std'):
            want = meta.get(f'pixel_{key}')
            have = getattr(preprocessor, key, None)
            if want is not None and have is not None and not torch.allclose(
                    have.flatten().cpu(), torch.tensor(want, dtype=have.dtype), atol=1e-3):
                wrong.append(f'model.data_preprocessor.{key}="{list(want)}"')
        if wrong:
            raise ValueError(f'{path} was trained with other conventions than this config; '
                             f'add --cfg-options {" ".join(wrong)} (docs/hybrik_checkpoint.md).')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        """A frozen backbone is never trained, so its weights must come from a file: a
        checkpoint without any (one trained from cached features) is refused instead of
        leaving the backbone random."""
        if self.freeze_backbone and not getattr(self, '_loading_pretrained', False) and \
                not any(k.startswith(prefix + 'backbone.') for k in state_dict):
            raise KeyError(
                'This checkpoint has no backbone weights (a model trained from cached '
                'features, backbone=None) and this model has a frozen backbone, which would '
                'stay random. Test it on cached features (configs/unspat_3dpw_features.py), '
                'or add the backbone it was trained on (docs/cached_features.md).')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.head(self.neck(self.extract_feat(inputs)).feats)
        raise ValueError(f'mode must be "loss", "predict" or "tensor", got {mode!r}.')

    def loss(self, inputs: Tensor, data_samples: Sequence[BaseDataElement]) -> Dict[str, Tensor]:
        feats = self.extract_feat(inputs)
        encoded = self.neck(feats)  # SAM -> uncertainty -> Space2Batch attention
        outputs = self.head(encoded.feats, with_mesh=False)  # heatmaps -> keypoints -> IK
        losses = self.head.loss(outputs, self._stack_targets(data_samples))
        losses.update(encoded.losses)  # the uncertainty estimator's BCE
        return losses

    def parse_losses(self, losses: Dict[str, Tensor]):
        """mmengine's parsing, with the *logged* values averaged over all processes, so
        that a distributed run logs the loss of its global batch (as a single process
        with that batch would); the loss that is back-propagated stays this process's."""
        loss, log_vars = super().parse_losses(losses)
        if get_world_size() > 1:
            names = list(log_vars)
            values = torch.stack([log_vars[k].detach().float() for k in names])
            all_reduce(values, op='mean')
            log_vars = OrderedDict(zip(names, values))
        return loss, log_vars

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Sequence[BaseDataElement]
                ) -> List[BaseDataElement]:
        """Middle-frame results per clip, written onto its data sample: ``pred_theta``
        (72,), ``pred_betas`` (10,), ``pred_vertices`` (6890, 3), ``pred_joints14``/
        ``pred_joints17``/``pred_joints24`` and ``pred_keypoints3d`` (29, 3) in metres
        (root-relative, camera axes), ``pred_camera`` (3,), ``pred_sigma`` (29,) and
        ``pred_uncertainty`` (T, h, w). Ground-truth meshes are the metric's business
        (``MeshMetric(body_model=...)``)."""
        encoded = self.neck(self.extract_feat(inputs))
        outputs = self.head(encoded.feats)
        for i, sample in enumerate(data_samples):
            sample.set_data(dict(
                pred_theta=outputs['theta'][i], pred_betas=outputs['betas'][i],
                pred_vertices=outputs['vertices'][i], pred_joints14=outputs['joints14'][i],
                pred_joints17=outputs['joints17'][i], pred_joints24=outputs['joints24'][i],
                pred_keypoints3d=outputs['keypoints3d'][i], pred_camera=outputs['camera'][i],
                pred_sigma=outputs['sigma'][i]))
            if encoded.uncertainty is not None:
                sample.set_data(dict(pred_uncertainty=encoded.uncertainty[i]))
        return list(data_samples)

    @staticmethod
    def _stack_targets(data_samples: Sequence[BaseDataElement]) -> Dict[str, Tensor]:
        missing = [f for f in TARGET_FIELDS if f not in data_samples[0]]
        if missing:
            raise KeyError(f'data samples lack the ground-truth fields {missing}; pack them with '
                           'the PackVideoMeshInputs transform (invalid labels get a zero '
                           'validity flag, not a missing field).')
        return {f: torch.stack([torch.as_tensor(s.get(f)) for s in data_samples]).float()
                for f in TARGET_FIELDS}
