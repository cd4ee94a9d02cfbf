"""Uncertainty-guided attention (UNSPAT eq. 2), pre-norm transformer encoder
layers, and the Space2Batch rearrangement (paper §3.1).

Eq. 2: ``softmax(Q K^T / sqrt(d) - gamma * U) V`` where ``U`` holds the
uncertainty of each *key*: an uncertain key loses attention from every query.
It is computed by ``F.scaled_dot_product_attention`` with the additive mask
``-gamma * U``; ``d`` is the per-head width.

Space2Batch: with the frames spatially aligned (SAM), temporal attention runs
independently at every spatial position, by moving space into the batch:
``(b, t, h, w, d) -> (b h w, t, d)``. This is exactly full spatiotemporal
attention over the ``t h w`` tokens restricted to pairs at the same position
(see :func:`same_position_mask`), at ``O(d h w T^2)`` instead of
``O(d h^2 w^2 T^2)``.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, repeat
from mmengine.model import BaseModule
from torch import Tensor


def space2batch(x: Tensor) -> Tensor:
    """(b, t, h, w, d) -> (b h w, t, d): one temporal sequence per position."""
    return rearrange(x, 'b t h w d -> (b h w) t d')


def batch2space(x: Tensor, b: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`space2batch`: (b h w, t, d) -> (b, t, h, w, d)."""
    return rearrange(x, '(b h w) t d -> b t h w d', b=b, h=h, w=w)


def same_position_mask(t: int, h: int, w: int, device=None) -> Tensor:
    """(t h w, t h w) bool mask over flattened ``(t h w)`` tokens, True where
    query and key share the spatial position: full attention under this mask
    is Space2Batch attention."""
    pos = repeat(torch.arange(h * w, device=device), 'hw -> (t hw)', t=t)
    return pos[:, None] == pos[None, :]


class UncertaintyGuidedAttention(BaseModule):
    """Multi-head self-attention with eq. 2's key penalty.

    Args:
        embed_dims (int): token width d_model.
        num_heads (int): attention heads; the logit scale is 1/sqrt(d_model / heads).
        attn_drop (float): dropout on the attention weights (training only).
            Defaults to 0.0.
        proj_drop (float): dropout after the output projection. Defaults to 0.0.
        qkv_bias (bool): give the query/key/value projection a bias. Defaults to True.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, qkv_bias: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    @staticmethod
    def additive_mask(key_penalty: Optional[Tensor], attn_mask: Optional[Tensor],
                      dtype: torch.dtype) -> Optional[Tensor]:
        """Combine (N, L) per-key logit offsets and an (L, L) bool mask
        (True = may attend) into one additive mask broadcastable to
        (N, heads, L, L); None when both are None."""
        mask = None
        if attn_mask is not None:
            if attn_mask.dtype != torch.bool:
                raise TypeError('attn_mask must be bool (True = may attend), got '
                                f'{attn_mask.dtype}')
            mask = torch.zeros(attn_mask.shape, dtype=dtype, device=attn_mask.device)
            mask = rearrange(mask.masked_fill(~attn_mask, float('-inf')), 'q k -> 1 1 q k')
        if key_penalty is not None:
            penalty = rearrange(key_penalty.to(dtype), 'n k -> n 1 1 k')
            mask = penalty if mask is None else mask + penalty
        return mask

    def forward(self, x: Tensor, key_penalty: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None, return_attn: bool = False
                ) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        """Multi-head self-attention of ``x`` with eq. 2's key penalty.

        Args:
            x (Tensor): (N, L, d) tokens.
            key_penalty (Tensor, optional): (N, L) offsets added to every query's logit
                for each key, i.e. ``-gamma * U``; None for plain attention.
                Defaults to None.
            attn_mask (Tensor, optional): (L, L) bool, True where query may attend key.
                Defaults to None.
            return_attn (bool): also return the attention weights, computed
                explicitly (an extra O(L^2) tensor per head). Defaults to False.

        Returns:
            tuple: (N, L, d) output; None, or a dict with (N, heads, L, L)
            ``'reweighted'`` (the weights used, eq. 2) and ``'plain'`` (the
            same logits without the key penalty) attention weights.
        """
        q, k, v = rearrange(self.qkv(x), 'n l (three h c) -> three n h l c', three=3,
                            h=self.num_heads)
        mask = self.additive_mask(key_penalty, attn_mask, x.dtype)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0)
        out = self.proj_drop(self.proj(rearrange(out, 'n h l c -> n l (h c)')))
        maps = None
        if return_attn:
            logits = torch.einsum('nhqc,nhkc->nhqk', q, k) / math.sqrt(self.head_dims)
            plain = self.additive_mask(None, attn_mask, x.dtype)
            maps = dict(
                reweighted=(logits if mask is None else logits + mask).softmax(-1),
                plain=(logits if plain is None else logits + plain).softmax(-1))
        return out, maps


class TransformerEncoderLayer(BaseModule):
    """Pre-norm encoder layer: ``x + Attn(LN(x))`` then ``x + FFN(LN(x))``,
    FFN = Linear(d, r d) -> GELU -> Dropout -> Linear(r d, d) -> Dropout."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_ratio: float = 2.0,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        hidden = int(round(embed_dims * ffn_ratio))
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = UncertaintyGuidedAttention(embed_dims, num_heads, attn_drop_rate, drop_rate)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.GELU(), nn.Dropout(drop_rate),
            nn.Linear(hidden, embed_dims), nn.Dropout(drop_rate))

    def forward(self, x: Tensor, key_penalty: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None, return_attn: bool = False
                ) -> Tuple[Tensor, Optional[Dict[str, Tensor]]]:
        """(N, L, d) -> (N, L, d) and optional attention maps (see
        :meth:`UncertaintyGuidedAttention.forward`)."""
        attn_out, maps = self.attn(self.norm1(x), key_penalty, attn_mask, return_attn)
        x = x + attn_out
        return x + self.ffn(self.norm2(x)), maps


class UncertaintyGuidedTransformer(BaseModule):
    """N pre-norm encoder layers sharing one eq.-2 scale ``gamma``.

    Args:
        embed_dims (int): token width d_model, see :class:`TransformerEncoderLayer`.
            Defaults to 512.
        num_heads (int): attention heads, see :class:`TransformerEncoderLayer`.
            Defaults to 8.
        num_layers (int): N (paper: 3). Defaults to 3.
        ffn_ratio (float): FFN width ratio r, see :class:`TransformerEncoderLayer`.
            Defaults to 2.0.
        drop_rate (float): dropout after the attention projection and in the FFN, see
            :class:`TransformerEncoderLayer`. Defaults to 0.0.
        attn_drop_rate (float): dropout on the attention weights, see
            :class:`TransformerEncoderLayer`. Defaults to 0.0.
        gamma (float): initial/fixed value of gamma in eq. 2. Defaults to 1.0.
        learnable_gamma (bool): make gamma an nn.Parameter (unconstrained sign).
            Defaults to False.
        final_norm (bool): LayerNorm the output (pre-norm stacks need it).
            Defaults to True.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    def __init__(self, embed_dims: int = 512, num_heads: int = 8, num_layers: int = 3,
                 ffn_ratio: float = 2.0, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 gamma: float = 1.0, learnable_gamma: bool = False, final_norm: bool = True,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(embed_dims, num_heads, ffn_ratio, drop_rate, attn_drop_rate)
            for _ in range(num_layers)
        ])
        if learnable_gamma:
            self.gamma = nn.Parameter(torch.tensor(float(gamma)))
        else:
            self.register_buffer('gamma', torch.tensor(float(gamma)), persistent=False)
        self.norm = nn.LayerNorm(embed_dims) if final_norm else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, uncertainty: Optional[Tensor] = None,
                attn_mask: Optional[Tensor] = None, return_attn: bool = False
                ) -> Tuple[Tensor, Optional[List[Dict[str, Tensor]]]]:
        """Encode ``x`` through the N layers, eq. 2's key penalty ``-gamma * U``.

        Args:
            x (Tensor): (N, L, d) tokens.
            uncertainty (Tensor, optional): (N, L) U of each token in [0, 1], or None.
                Defaults to None.
            attn_mask (Tensor, optional): (L, L) bool, True where query may attend key.
                Defaults to None.
            return_attn (bool): also return each layer's attention weights.
                Defaults to False.

        Returns:
            tuple: (N, L, d) encoded tokens; None or a list (one per layer)
            of dicts of (N, heads, L, L) weights, see
            :meth:`UncertaintyGuidedAttention.forward`.
        """
        penalty = None if uncertainty is None else -self.gamma * uncertainty
        all_maps = [] if return_attn else None
        for layer in self.layers:
            x, maps = layer(x, penalty, attn_mask, return_attn)
            if return_attn:
                all_maps.append(maps)
        return self.norm(x), all_maps
