"""UNSPAT neck: SAM -> uncertainty estimator -> Space2Batch transformer
(paper §3.1, Fig. 1), with the ablation switches of Table 4."""
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from einops import reduce, rearrange
from mmengine.model import BaseModule
from torch import Tensor

from unspat_mm.registry import MODELS
from .space2batch_attention import (UncertaintyGuidedTransformer, batch2space,
                                    space2batch)
from .spatial_alignment import SpatialAlignment
from .uncertainty import UncertaintyEstimator

ATTENTION_MODES = ('space2batch', 'full', 'gap_temporal')


class UNSPATNeckOutput(NamedTuple):
    """What :meth:`UNSPATNeck.forward` returns for a (B, T, C, H, W) clip.

    Attributes:
        feats: encoded features, (B, D, H, W) for the middle frame or
            (B, T, D, H, W) with ``output_frames='all'`` (D = embed_dims).
        uncertainty: (B, T, H, W) U in [0, 1], None without the estimator.
        sam_params: (B, T, 3) warps (s, tx, ty) per frame (identity for the
            middle frame), None without SAM.
        losses: ``{'loss_uncertainty': BCE}`` in training with the
            estimator (the caller adds it to its losses), else empty.
        attn_maps: None, or one dict per layer with ``'reweighted'`` (used,
            eq. 2) and ``'plain'`` (without -gamma U) weights shaped
            (B, heads, Tq, Tk, H, W) for space2batch (``[..., i, j, :, :]``
            is the paper's a_ij map), (B, heads, Tq, H, W, Tk, H, W) for
            full and (B, heads, Tq, Tk) for gap_temporal.
        artifact_mask: (B, T, H, W) 1 where synthetic artifacts were pasted
            (training with the estimator), else None.
    """
    feats: Tensor
    uncertainty: Optional[Tensor]
    sam_params: Optional[Tensor]
    losses: Dict[str, Tensor]
    attn_maps: Optional[List[Dict[str, Tensor]]]
    artifact_mask: Optional[Tensor]


@MODELS.register_module()
class UNSPATNeck(BaseModule):
    """Uncertainty-guided spatiotemporal encoder of a clip's feature maps.

    Inputs (see :meth:`forward`): a (B, T, C, H, W) clip, whose middle frame
    ``T // 2`` is the target; or an mmpose backbone's tuple of maps, whose
    ``in_index`` level is (B, T, C, H, W) or (N, C, H, W) with N = B *
    ``num_frames`` consecutive images per clip.

    Args:
        in_channels (int): C of the backbone features (paper: 512). Defaults to 512.
        embed_dims (int, optional): transformer width D; a linear projection maps
            C -> D when they differ. Output channels are D. Defaults to None
            (``in_channels``).
        num_frames (int): the longest clip T (paper: 16); sizes the temporal
            positional embedding, indexed by offset from the middle frame, so
            any T <= num_frames works (T = 1: plain per-position encoding).
            Defaults to 16.
        feat_size (Sequence[int]): (H, W) of the features (paper: 8x8).
            Defaults to (8, 8).
        num_layers, num_heads (int): encoder layers and heads (paper: 3, 8).
            Defaults to 3 and 8.
        ffn_ratio (float): FFN hidden width / D. The paper gives no value; 2.0 is
            the one default, for the paper's configuration too (which does not
            repeat it). Chosen against Table 3 with HybrIK's head: no ratio matches
            both the paper's 11.8M parameters and 12.9 GFLOPs within +-15%, and 2
            deviates least from both (``python tools/analysis/get_flops.py
            configs/unspat_3dpw.py`` prints the counts). Defaults to 2.0.
        drop_rate, attn_drop_rate (float): dropout after projections/FFN, and on
            attention weights. Defaults to 0.1 and 0.0.
        attention (str): 'space2batch' (paper), 'full' (attention over all T H W
            tokens, Table 4 (1)) or 'gap_temporal' (MPS-Net-like: attention
            over spatially pooled frames; the residual updates of the pooled
            tokens are broadcast back over space). Defaults to 'space2batch'.
        use_sam (bool): align frames with :class:`SpatialAlignment` (Table 4).
            Defaults to True.
        use_uncertainty (bool): uncertainty estimator + eq. 2 re-weighting.
            Defaults to True.
        gamma (float): eq. 2's scale. Defaults to 1.0.
        learnable_gamma (bool): make ``gamma`` an nn.Parameter instead of fixed.
            Defaults to False.
        detach_uncertainty (bool): U enters the attention without gradient, so the
            estimator learns from its BCE loss only. Defaults to True.
        corrupt_transformer_input (bool): in training, the transformer also sees
            the artifact-corrupted features (so it learns to rely on U);
            False: only the estimator sees them. Defaults to True.
        sam_cfg, uncertainty_cfg (dict, optional): extra kwargs of
            :class:`SpatialAlignment` and :class:`UncertaintyEstimator`.
            Defaults to None.
        output_frames (str, optional): 'middle', 'all' or None (middle for a 5-D
            input, all for an (N, C, H, W) level, one output per image).
            Defaults to None.
        in_index (int): level of a tuple input to encode. Defaults to -1.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.

    Defaults the paper does not give (its supplementary is not available):
    FFN ratio 2 (see ``ffn_ratio``), dropout 0.1, gamma 1 (fixed), artifacts on 10% of the
    positions in 2x2-cell squares, SAM correlation radius 2 cells with a
    256-wide hidden FC, a 64-wide estimator. With them the paper
    configuration has 6.86M parameters and one 16-frame clip costs 13.2 GFLOP
    (6.6 GMAC) forward.
    """

    def __init__(self, in_channels: int = 512, embed_dims: Optional[int] = None,
                 num_frames: int = 16, feat_size: Sequence[int] = (8, 8),
                 num_layers: int = 3, num_heads: int = 8, ffn_ratio: float = 2.0,
                 drop_rate: float = 0.1, attn_drop_rate: float = 0.0,
                 attention: str = 'space2batch', use_sam: bool = True,
                 use_uncertainty: bool = True, gamma: float = 1.0,
                 learnable_gamma: bool = False, detach_uncertainty: bool = True,
                 corrupt_transformer_input: bool = True, sam_cfg: Optional[dict] = None,
                 uncertainty_cfg: Optional[dict] = None, output_frames: Optional[str] = None,
                 in_index: int = -1, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if attention not in ATTENTION_MODES:
            raise ValueError(f'attention must be one of {ATTENTION_MODES}, got {attention!r}')
        if output_frames not in (None, 'middle', 'all'):
            raise ValueError("output_frames must be 'middle', 'all' or None, got "
                             f'{output_frames!r}')
        embed_dims = embed_dims or in_channels
        self.in_channels, self.embed_dims = in_channels, embed_dims
        self.num_frames, self.feat_size = num_frames, tuple(feat_size)
        self.attention, self.output_frames, self.in_index = attention, output_frames, in_index
        self.detach_uncertainty = detach_uncertainty
        self.corrupt_transformer_input = corrupt_transformer_input
        self.sam = SpatialAlignment(in_channels, self.feat_size, **(sam_cfg or {})) \
            if use_sam else None
        self.estimator = UncertaintyEstimator(in_channels, **(uncertainty_cfg or {})) \
            if use_uncertainty else None
        self.input_proj = nn.Linear(in_channels, embed_dims) \
            if embed_dims != in_channels else nn.Identity()
        self.temporal_embed = nn.Parameter(torch.zeros(num_frames, embed_dims))
        nn.init.trunc_normal_(self.temporal_embed, std=0.02)
        if attention != 'gap_temporal':
            self.spatial_embed = nn.Parameter(
                torch.zeros(self.feat_size[0] * self.feat_size[1], embed_dims))
            nn.init.trunc_normal_(self.spatial_embed, std=0.02)
        self.transformer = UncertaintyGuidedTransformer(
            embed_dims, num_heads, num_layers, ffn_ratio, drop_rate, attn_drop_rate, gamma,
            learnable_gamma, final_norm=False)
        self.norm = nn.LayerNorm(embed_dims)
        self._warned_lost_loss = False

    def _check_clip(self, x: Tensor) -> None:
        _, t, c, h, w = x.shape
        if c != self.in_channels or (h, w) != self.feat_size:
            raise ValueError(f'UNSPATNeck was built for (C, H, W) = ({self.in_channels}, '
                             f'{self.feat_size[0]}, {self.feat_size[1]}) but got ({c}, {h}, {w}); '
                             'set in_channels / feat_size to the backbone output')
        if not 1 <= t <= self.num_frames:
            raise ValueError(f'clip of {t} frames but the neck was built for at most '
                             f'num_frames={self.num_frames}; raise num_frames')

    def _temporal_pos(self, t: int) -> Tensor:
        """(T, D) embeddings of offsets -T//2 .. T-1-T//2 from the middle."""
        start = self.num_frames // 2 - t // 2
        return self.temporal_embed[start:start + t]

    def _encode(self, x: Tensor, u: Optional[Tensor], return_attn: bool
                ) -> Tuple[Tensor, Optional[list]]:
        """(B, T, H, W, D) tokens and (B, T, H, W) U -> encoded tokens."""
        b, t, h, w, _ = x.shape
        t_pos = rearrange(self._temporal_pos(t), 't d -> 1 t 1 1 d')
        if self.attention == 'gap_temporal':
            pooled = reduce(x, 'b t h w d -> b t d', 'mean') + t_pos[:, :, 0, 0]
            u_seq = None if u is None else reduce(u, 'b t h w -> b t', 'mean')
            enc, maps = self.transformer(pooled, u_seq, return_attn=return_attn)
            return x + rearrange(enc - pooled, 'b t d -> b t 1 1 d'), maps
        x = x + t_pos + rearrange(self.spatial_embed, '(h w) d -> 1 1 h w d', h=h)
        if self.attention == 'space2batch':
            u_seq = None if u is None else rearrange(u, 'b t h w -> (b h w) t')
            enc, maps = self.transformer(space2batch(x), u_seq, return_attn=return_attn)
            if maps is not None:
                maps = [{k: rearrange(v, '(b h w) n q k -> b n q k h w', b=b, h=h, w=w)
                         for k, v in m.items()} for m in maps]
            return batch2space(enc, b, h, w), maps
        u_seq = None if u is None else rearrange(u, 'b t h w -> b (t h w)')
        enc, maps = self.transformer(rearrange(x, 'b t h w d -> b (t h w) d'), u_seq,
                                     return_attn=return_attn)
        if maps is not None:
            maps = [{k: rearrange(v, 'b n (tq hq wq) (tk hk wk) -> b n tq hq wq tk hk wk',
                                  tq=t, hq=h, tk=t, hk=h) for k, v in m.items()} for m in maps]
        return rearrange(enc, 'b (t h w) d -> b t h w d', t=t, h=h), maps

    def forward_clip(self, feats: Tensor, return_attention: bool = False,
                     output_frames: str = 'middle') -> UNSPATNeckOutput:
        """Encode (B, T, C, H, W) clips; see :class:`UNSPATNeckOutput`."""
        self._check_clip(feats)
        sam_params = uncertainty = mask = None
        losses = {}
        if self.sam is not None:
            feats, sam_params = self.sam(feats)
        u_attn = None
        if self.estimator is not None:
            seen = feats
            if self.training:
                seen, mask = self.estimator.corrupt(feats)
                if self.corrupt_transformer_input:
                    feats = seen
            logits = self.estimator(seen)
            uncertainty = logits.sigmoid()
            if mask is not None:
                losses['loss_uncertainty'] = self.estimator.loss(logits, mask)
            u_attn = uncertainty.detach() if self.detach_uncertainty else uncertainty
        tokens = self.input_proj(rearrange(feats, 'b t c h w -> b t h w c'))
        enc, maps = self._encode(tokens, u_attn, return_attention)
        out = rearrange(self.norm(enc), 'b t h w d -> b t d h w')
        if output_frames == 'middle':
            out = out[:, out.shape[1] // 2]
        # contiguous: convolutions after the neck (the head's deconvolutions) run about
        # 1.3x slower on the CPU on the channels-last strides the rearrangement leaves
        out = out.contiguous()
        return UNSPATNeckOutput(out, uncertainty, sam_params, losses, maps, mask)

    def forward(self, feats: Union[Tensor, Sequence[Tensor]], return_attention: bool = False
                ) -> Union[UNSPATNeckOutput, Tuple[Tensor, ...]]:
        """Encode a clip, or level ``in_index`` of a backbone's tuple of maps.

        Args:
            feats (Tensor | Sequence[Tensor]): a (B, T, C, H, W) clip ->
                :class:`UNSPATNeckOutput`; or a tuple/list of maps (mmpose backbone
                output) -> the same tuple with level ``in_index`` replaced by its
                encoding: an (N, C, H, W) level is read as N = B * num_frames
                consecutive frames and gives (N, D, H, W), every frame encoded (one
                per data sample); a (B, T, C, H, W) level gives the
                ``output_frames`` selection. The uncertainty loss cannot be
                returned this way (a plain mmpose estimator does not collect
                neck losses): call the neck on a clip tensor to get it.
            return_attention (bool): also compute the attention maps (clip input).
                Defaults to False.

        Returns:
            UNSPATNeckOutput | tuple: the clip's encoding, or the backbone's tuple
            with level ``in_index`` encoded (see ``feats``).
        """
        if isinstance(feats, Tensor):
            if feats.dim() != 5:
                raise ValueError('UNSPATNeck takes a (B, T, C, H, W) clip or a tuple of backbone '
                                 f'maps, got a tensor of shape {tuple(feats.shape)}; wrap a '
                                 '(B*T, C, H, W) batch in a tuple')
            return self.forward_clip(feats, return_attention, self.output_frames or 'middle')
        level = feats[self.in_index]
        if level.dim() == 4:
            if level.shape[0] % self.num_frames:
                raise ValueError(f'a batch of {level.shape[0]} images cannot be split into clips '
                                 f'of num_frames={self.num_frames}; the batch size must be a '
                                 'multiple of num_frames')
            if self.output_frames == 'middle' and self.num_frames > 1:
                raise ValueError("output_frames='middle' would leave most of the N = B * T "
                                 'data samples without features; use None or \'all\'')
            clip = rearrange(level, '(b t) c h w -> b t c h w', t=self.num_frames)
            out = rearrange(self.forward_clip(clip, output_frames='all').feats,
                            'b t d h w -> (b t) d h w')
        else:
            out = self.forward_clip(level, output_frames=self.output_frames or 'middle').feats
        if self.training and self.estimator is not None and not self._warned_lost_loss:
            warnings.warn('UNSPATNeck got a tuple input in training: the uncertainty estimator\'s '
                          'BCE loss cannot reach the estimator this way, so U is untrained. Set '
                          'use_uncertainty=False, or use an estimator that calls the neck on a '
                          '(B, T, C, H, W) clip and adds output.losses (unspat_mm\'s UNSPAT).')
            self._warned_lost_loss = True
        feats = list(feats)
        feats[self.in_index] = out
        return tuple(feats)
