"""The UNSPAT neck evaluated for the middle frame only.

Inference reads one output per window, the middle frame's. Space2Batch attention runs
over time at each spatial position, so every layer but the last must encode all T
frames. In the last layer only the middle frame's query is needed: its projections and
FFN run for one token instead of T, and the key and value projections fold into that
query (see :func:`_last_layer_middle`), so they never run on the T tokens. Tokens are
made contiguous once (for one window the Space2Batch rearrangement is a strided view that
every LayerNorm would copy) and so is the output (the head's deconvolutions are 1.5x
slower on channels-last strides). With the estimator's sorting-network median and SAM's
one-GEMM correlation, the paper config's neck costs about 0.42 of a frame's backbone +
head on one CPU thread (the folding itself saves about 5% of the neck;
``tools/analysis/benchmark_inference.py``). The result equals
:meth:`UNSPATNeck.forward` to float rounding (``tests/test_apis/test_streaming.py``).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

__all__ = ['encode_middle_frame']


def _last_layer_middle(layer, x: Tensor, penalty: Optional[Tensor], mid: int) -> Tensor:
    """One pre-norm encoder layer (``TransformerEncoderLayer``) whose queries are the
    middle tokens only: (N, T, d) -> (N, 1, d).

    With a single query per head the key and value projections fold into it
    (associativity), so they never run on the T tokens: per head h of width c,
    ``q_h . (W_k,h y_j + b_k,h) = (W_k,h^T q_h) . y_j + const`` (the constant cancels in
    the softmax) and ``sum_j a_hj (W_v,h y_j + b_v,h) = W_v,h (sum_j a_hj y_j) + b_v,h``
    (the weights sum to 1), with ``y = LN(x)``. The attention itself is then SDPA of the
    folded query against the normalised tokens, shared by all heads, at the layer's
    scale ``1 / sqrt(c)``.
    """
    attn = layer.attn
    heads = attn.num_heads
    normed = layer.norm1(x)
    weight, bias = attn.qkv.weight, attn.qkv.bias
    w_q, w_k, w_v = rearrange(weight, '(three h c) d -> three h c d', three=3, h=heads)
    b_q, _, b_v = (None, None, None) if bias is None else \
        rearrange(bias, '(three h c) -> three h c', three=3, h=heads)
    q = torch.einsum('nd,hcd->nhc', normed[:, mid], w_q)
    if b_q is not None:
        q = q + b_q
    folded_q = rearrange(torch.einsum('nhc,hcd->nhd', q, w_k), 'n h d -> n h 1 d')
    shared = rearrange(normed, 'n t d -> n 1 t d').expand(-1, heads, -1, -1)
    mask = attn.additive_mask(penalty, None, x.dtype)
    context = F.scaled_dot_product_attention(folded_q, shared, shared, attn_mask=mask,
                                             scale=attn.head_dims**-0.5)
    out = torch.einsum('nhd,hcd->nhc', rearrange(context, 'n h 1 d -> n h d'), w_v)
    if b_v is not None:
        out = out + b_v
    out = attn.proj_drop(attn.proj(rearrange(out, 'n h c -> n 1 (h c)')))
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
    # contiguous: for one window the rearrangement is a strided view, and every
    # LayerNorm and residual sum would copy or inherit its strides
    x = rearrange(tokens, 'b t h w d -> (b h w) t d').contiguous()
    transformer = neck.transformer
    penalty = None if uncertainty is None else \
        -transformer.gamma * rearrange(uncertainty, 'b t h w -> (b h w) t')
    for layer in transformer.layers[:-1]:
        x, _ = layer(x, penalty)
    middle = transformer.norm(_last_layer_middle(transformer.layers[-1], x, penalty, t // 2))
    middle = neck.norm(middle)
    # contiguous: the head's deconvolutions are about 1.5x slower on the channels-last
    # strides the rearrangement leaves
    middle = rearrange(middle, '(b h w) 1 d -> b d h w', b=b, h=h, w=w).contiguous()
    return middle, uncertainty
