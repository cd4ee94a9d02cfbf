"""The UNSPAT estimator (paper Figure 1)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from einops import rearrange
from mmengine.dist import all_reduce, get_world_size
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor

from unspat_mm.registry import MODELS

# Ground-truth fields the head's loss reads from each data sample (see IKMeshHead.loss).
TARGET_FIELDS = ('keypoints3d', 'keypoints3d_valid', 'keypoints2d', 'keypoints2d_valid',
                 'theta', 'betas', 'smpl_valid')
_REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'open-mmlab://', 'mmcls://')


def _check_local_init(backbone: Optional[dict]) -> None:
    checkpoint = ((backbone or {}).get('init_cfg') or {}).get('checkpoint')
    if isinstance(checkpoint, str) and checkpoint.startswith(_REMOTE_PREFIXES):
        raise ValueError(
            f'backbone init_cfg.checkpoint={checkpoint!r} would be downloaded; unspat-mm only '
            'initialises from a local file you give (e.g. a ResNet-34 or HybrIK checkpoint '
            'converted with tools/misc/make_checkpoint_safe.py).')


@MODELS.register_module()
class UNSPAT(BaseModel):
    """Uncertainty-guided spatiotemporal transformer for video mesh recovery.

    ``loss`` and ``predict`` follow Figure 1: per-frame backbone features ->
    SAM alignment -> uncertainty maps -> Space2Batch transformer (the neck) ->
    3D heatmaps, soft-argmax, twist-swing IK and SMPL (the head).

    Args:
        backbone: per-frame backbone config (paper: mmpose ``ResNet``, depth 34,
            ``out_indices=(3,)``), applied to (B*T, 3, H, W); ``None`` when the
            data are pre-extracted feature clips (Table 1 protocol).
        neck: :class:`~unspat_mm.models.necks.UNSPATNeck` config.
        head: :class:`~unspat_mm.models.heads.IKMeshHead` config.
        data_preprocessor: :class:`VideoDataPreprocessor` config.
        channels_last: run the backbone on channels-last (NHWC) tensors and weights.
            Same results, faster convolutions: oneDNN on CPU (the embedded default's
            training step: -13%), tensor cores on GPU. The backbone's output is made
            contiguous again for the neck.
    """

    def __init__(self, backbone: Optional[dict], neck: dict, head: dict,
                 data_preprocessor: Optional[dict] = None, channels_last: bool = False,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):  # resolve in our scope, whatever the default
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        _check_local_init(backbone)
        self.backbone = MODELS.build(backbone) if backbone is not None else None
        self.channels_last = channels_last and self.backbone is not None
        if self.channels_last:  # later in-place (re)initialisation keeps the layout
            self.backbone.to(memory_format=torch.channels_last)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """(B, T, 3, H, W) normalised frames -> (B, T, C, h, w) feature maps
        (or pre-extracted features, passed through)."""
        if self.backbone is None:
            return inputs
        frames = rearrange(inputs, 'b t c h w -> (b t) c h w')
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(frames)
        feats = feats[-1] if isinstance(feats, (tuple, list)) else feats
        if self.channels_last:
            feats = feats.contiguous()
        return rearrange(feats, '(b t) c h w -> b t c h w', b=inputs.shape[0])

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
