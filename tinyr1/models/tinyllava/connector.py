"""The ``groupresampler`` connector: vision tokens of all frames -> ``num_queries`` LM tokens.

Follows docs/DESIGN.md, "The TinyLLaVA-Video architecture" (an understanding of the official TinyLLaVA-Video connector):

1. ``linear``: vision width -> LM width, on every token of every frame;
2. the frames' tokens, concatenated, are split into ``group`` contiguous chunks with
   ``torch.tensor_split`` semantics (when the length does not divide, the first ``len % group``
   chunks get one token more);
3. each chunk is resampled by a Perceiver resampler whose ``num_queries // group`` learned
   ``latents`` are ONE set shared by all chunks: ``layers`` x [cross-attention whose keys/values
   are ``[chunk tokens; latents]`` (8 heads x 64, no biases), residual; feed-forward
   LayerNorm -> Linear(x4) -> GELU -> Linear, residual], then the final ``norm``;
4. the chunks' latents are concatenated and a sinusoidal positional encoding over the whole
   sequence is added (computed in float16 and cast to the features' dtype, like the official code,
   unless ``position_encoding_fp16=False``; always on the features' device).

Parameter names (``connector.`` prefix inside the full model) follow the official checkpoint's
``connector._connector.*`` one to one: ``latents``, ``linear.{weight,bias}``,
``layers.{i}.0.{norm_media,norm_latents}.{weight,bias}``, ``layers.{i}.0.{to_q,to_kv,to_out}.weight``,
``layers.{i}.1.0.{weight,bias}`` (LayerNorm), ``layers.{i}.1.1.weight``, ``layers.{i}.1.3.weight``,
``norm.{weight,bias}``.

Chunks are processed in at most two batched passes (the long chunks, then the short ones) instead
of one loop iteration per chunk; the arithmetic is the same.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PerceiverAttention(nn.Module):
    """Latents attend to ``[media; latents]`` (both LayerNormed first)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = dim_head * heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """media [M, n1, D], latents [M, n2, D] -> update for the latents [M, n2, D]."""
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((media, latents), dim=1)).chunk(2, dim=-1)
        m = q.shape[0]
        q, k, v = (t.reshape(m, t.shape[1], self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v))
        # scale = dim_head ** -0.5, no mask: every latent sees all of its chunk and all latents.
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(m, -1, self.heads * self.dim_head))


def feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    """LayerNorm -> Linear -> GELU -> Linear (indices 0, 1, 2, 3: the official key layout)."""
    inner = int(dim * mult)
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(), nn.Linear(inner, dim, bias=False))


def sinusoidal_encoding(length: int, dim: int, *, device: torch.device, dtype: torch.dtype, fp16: bool = True) -> torch.Tensor:
    """[1, length, dim]: sin on even channels, cos on odd ones, wavelengths up to 10000 * 2pi."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    if fp16:  # the official code stores the encoding in float16 before adding it
        pe = pe.to(torch.float16)
    return pe.to(dtype).unsqueeze(0)


def chunk_sizes(length: int, group: int) -> list[int]:
    """``torch.tensor_split`` sizes: the first ``length % group`` chunks are one longer."""
    base, extra = divmod(length, group)
    return [base + 1] * extra + [base] * (group - extra)


class GroupResampler(nn.Module):
    """The connector. ``forward(features [B, S, vision_dim]) -> [B, num_queries, dim]``."""

    def __init__(
        self,
        vision_dim: int,
        dim: int,
        *,
        num_queries: int,
        group: int,
        layers: int = 3,
        heads: int = 8,
        dim_head: int = 64,
        ff_mult: int = 4,
        position_encoding_fp16: bool = True,
    ) -> None:
        super().__init__()
        if num_queries % group:
            raise ValueError(f"num_queries ({num_queries}) must be divisible by group ({group})")
        self.group = group
        self.num_queries = num_queries
        self.position_encoding_fp16 = position_encoding_fp16
        self.latents = nn.Parameter(torch.randn(num_queries // group, dim))
        self.linear = nn.Linear(vision_dim, dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head=dim_head, heads=heads), feed_forward(dim, ff_mult)])
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)

    def _resample(self, chunks: torch.Tensor) -> torch.Tensor:
        """chunks [M, n, D] (M independent chunks) -> [M, latents, D]."""
        latents = self.latents.to(chunks.dtype).unsqueeze(0).expand(chunks.shape[0], -1, -1)
        for attn, ff in self.layers:
            latents = attn(chunks, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.linear(features)
        b, s, d = x.shape
        sizes = chunk_sizes(s, self.group)
        n_long = s % self.group  # chunks of length sizes[0] (one longer than the rest)
        outs = []
        if n_long:
            long_len = sizes[0]
            long = x[:, : n_long * long_len].reshape(b * n_long, long_len, d)
            outs.append(self._resample(long).reshape(b, n_long, -1, d))
        n_short = self.group - n_long
        short_len = sizes[-1]
        short = x[:, n_long * sizes[0] if n_long else 0 :].reshape(b * n_short, short_len, d)
        outs.append(self._resample(short).reshape(b, n_short, -1, d))
        out = torch.cat(outs, dim=1).reshape(b, self.num_queries, d)
        pe = sinusoidal_encoding(self.num_queries, d, device=out.device, dtype=out.dtype, fp16=self.position_encoding_fp16)
        return out + pe
