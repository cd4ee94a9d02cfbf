"""The UNSPAT neck evaluated for the middle frame only.

Inference reads one output per window, the middle frame's. Space2Batch attention runs
over time at each spatial position, so every layer but the last must encode all T
frames; in the last layer only the middle frame's queries are needed (keys and values
still come from all frames), which saves that layer's query projection, output
projection and FFN for T - 1 frames (about a fifth of the paper neck's cost). The result
equals :meth:`UNSPATNeck.forward` to float rounding (``tests/test_apis``).
"""
from typing import Optional, Tuple

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

__all__ = ['encode_middle_frame']


def _last_layer_middle(layer, x: Tensor, penalty: Optional[Tensor], mid: int) -> Tensor:
    """One pre-norm encoder layer (``TransformerEncoderLayer``) whose queries are the
    middle tokens only: (N, T, d) -> (N, 1, d)."""
    attn = layer.attn
    dims = x.shape[-1]
    normed = layer.norm1(x)
    weight, bias = attn.qkv.weight, attn.qkv.bias
    q = F.linear(normed[:, mid:mid + 1], weight[:dims], None if bias is None else bias[:dims])
    kv = F.linear(normed, weight[dims:], None if bias is None else bias[dims:])
    q = rearrange(q, 'n l (h c) -> n h l c', h=attn.num_heads)
    k, v = rearrange(kv, 'n l (two h c) -> two n h l c', two=2, h=attn.num_heads)
    mask = attn.additive_mask(penalty, None, x.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = attn.proj_drop(attn.proj(rearrange(out, 'n h l c -> n l (h c)')))
    y = x[:, mid:mid + 1] + out
    return y + layer.ffn(layer.norm2(y))


def encode_middle_frame(neck, feats: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
    """``neck(feats)``'s middle-frame features and uncertainty, computed for that frame.

    Args:
        neck (UNSPATNeck): the neck, in eval mode (in training, or for the 'full' and
            'gap_temporal' ablations, the neck's own forward is used).
        feats (Tensor): (B, T, C, h, w) backbone features of B windows.

    Returns:
        tuple: (B, D, h, w) encoded middle-frame features and the (B, T, h, w)
        uncertainty U in [0, 1] (None without the estimator).
    """
    if neck.training or neck.attention != 'space2batch' or len(neck.transformer.layers) == 0:
        out = neck(feats)
        return out.feats, out.uncertainty
    neck._check_clip(feats)
    if neck.sam is not None:
        feats, _ = neck.sam(feats)
    uncertainty = None
    if neck.estimator is not None:
        uncertainty = neck.estimator(feats).sigmoid()
    tokens = neck.input_proj(rearrange(feats, 'b t c h w -> b t h w c'))
    b, t, h, w, _ = tokens.shape
    tokens = (tokens + rearrange(neck._temporal_pos(t), 't d -> 1 t 1 1 d')
              + rearrange(neck.spatial_embed, '(h w) d -> 1 1 h w d', h=h))
    x = rearrange(tokens, 'b t h w d -> (b h w) t d')
    transformer = neck.transformer
    penalty = None if uncertainty is None else \
        -transformer.gamma * rearrange(uncertainty, 'b t h w -> (b h w) t')
    for layer in transformer.layers[:-1]:
        x, _ = layer(x, penalty)
    middle = transformer.norm(_last_layer_middle(transformer.layers[-1], x, penalty, t // 2))
    middle = neck.norm(middle)
    return rearrange(middle, '(b h w) 1 d -> b d h w', b=b, h=h, w=w), uncertainty
