"""Spatial transformer (diffusers Transformer2DModel layout, SD1.5: 1x1-conv projections).

One block class serves all three uses, with explicit tensors instead of upstream's hooks and banks:
- reference UNet ("writer"): returns its norm1 output, the reference feature (networks.md (b).2);
- denoising UNet ("reader"): self-attention keys/values are [own tokens ; reference tokens], and a
  per-row switch drops the reference tokens for CFG's unconditional half (networks.md (b).5-6);
- guidance encoder: no cross-attention (networks.md (c)).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.networks.layers import Attention, FeedForward

# (k, v), each (R, L, C) with R dividing the attention rows: entry r serves rows r*n .. r*n+n-1 (n = rows/R).
# R = 1: one identity for every row; R = samples: one identity per sample (rows are sample-major, the frames
# of a sample adjacent), which lets one call serve several streams (engine/runtime/batcher.py).
ReferenceKV = tuple[torch.Tensor, torch.Tensor]


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, cross_attention_dim: int | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        if cross_attention_dim is not None:
            self.norm2 = nn.LayerNorm(dim)
            self.attn2 = Attention(dim, heads, kv_dim=cross_attention_dim)
        else:
            self.norm2 = self.attn2 = None
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def project_reference(self, feature: torch.Tensor) -> ReferenceKV:
        """Reference feature (R, L, C) -> its self-attention K and V under this block's weights."""
        return self.attn1.to_k(feature), self.attn1.to_v(feature)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                ref_kv: ReferenceKV | None = None,
                ref_keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, L, C). ref_keep (N,) bool: rows that see the reference tokens.

        Returns (output, norm1(x)); the second is the reference feature when this block writes one.
        """
        n = self.norm1(x)
        q, k, v = self.attn1.to_q(n), self.attn1.to_k(n), self.attn1.to_v(n)
        mask = None
        if ref_kv is not None:
            k_ref, v_ref = ref_kv
            rows = x.shape[0]
            k, v = _append_reference(k, k_ref), _append_reference(v, v_ref)
            if ref_keep is not None:
                # Masking the reference keys is exactly attention over the own tokens alone
                # (their softmax weights become 0): upstream's uncond branch, networks.md (b).6.
                own = torch.ones(rows, n.shape[1], dtype=torch.bool, device=x.device)
                ref = ref_keep[:, None].expand(rows, k_ref.shape[1])
                mask = torch.cat([own, ref], dim=1)[:, None, None, :]
        h = x + self.attn1.attend(q, k, v, mask)
        if self.attn2 is not None:
            h = h + self.attn2(self.norm2(h), text)
        h = h + self.ff(self.norm3(h))
        return h, n


def _append_reference(own: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """own (rows, L, C), ref (R, Lr, C) with R | rows -> (rows, L + Lr, C): each row's tokens followed by its
    identity's. Concatenated as (R, rows/R, ., C) blocks so the reference is broadcast, never copied twice;
    the shapes stay symbolic for ONNX export (R is 1 or the batch there)."""
    rows, tokens, c = own.shape
    r = ref.shape[0]
    per = rows // r
    ref = ref.to(own.dtype)[:, None].expand(r, per, ref.shape[1], c)
    return torch.cat([own.reshape(r, per, tokens, c), ref], dim=2).reshape(rows, -1, c)


class SpatialTransformer(nn.Module):
    """GN(eps 1e-6) -> 1x1 proj_in -> one block over h*w tokens -> 1x1 proj_out -> + input."""

    def __init__(self, dim: int, heads: int, cross_attention_dim: int | None, groups: int = 32):
        super().__init__()
        self.norm = nn.GroupNorm(groups, dim, eps=1e-6)
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, heads, cross_attention_dim)])
        self.proj_out = nn.Conv2d(dim, dim, 1)

    @property
    def block(self) -> TransformerBlock:
        return self.transformer_blocks[0]

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.proj_in(self.norm(x)).permute(0, 2, 3, 1).reshape(n, h * w, c)

    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None,
                ref_kv: ReferenceKV | None = None,
                ref_keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N,C,h,w) -> (output (N,C,h,w), block's norm1 tokens (N,h*w,C))."""
        n, c, h, w = x.shape
        tokens, feature = self.block(self._tokens(x), text, ref_kv, ref_keep)
        out = self.proj_out(tokens.reshape(n, h, w, c).permute(0, 3, 1, 2))
        return out + x, feature

    def reference_feature_only(self, x: torch.Tensor) -> torch.Tensor:
        """The norm1 tokens alone: for the last writer, whose remaining work is dead (networks.md (e).7)."""
        return self.block.norm1(self._tokens(x))
