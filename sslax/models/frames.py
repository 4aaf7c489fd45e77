"""Networks over filterbank frames [B, T, F]: the bidirectional Transformer of Mockingjay / TERA
and the unidirectional GRU stack of APC.

Both return (hidden [B, T, D], {"input": [B, T, D], "layer_<i>": [B, T, D]}): "input" is the
input projection of the frames (SUPERB's layer 0), each layer's output after it, so the
weighted-layer probe (`sslax.eval.layer_probe.LayerProbe(weighted_sum=True)`) sums layers of one
width.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.models.transformer import TransformerEncoder, dropout


def sinusoid_positions(length: int, dim: int) -> np.ndarray:
  """[length, dim] fixed positions of Vaswani et al. (sin at even, cos at odd dims), as Mockingjay's
  `get_sinusoid_table`."""
  pos = np.arange(length)[:, None]
  angle = pos / np.power(10000.0, 2 * (np.arange(dim)[None, :] // 2) / dim)
  table = np.zeros((length, dim), np.float32)
  table[:, 0::2], table[:, 1::2] = np.sin(angle[:, 0::2]), np.cos(angle[:, 1::2])
  return table


class SpecHead(nnx.Module):
  """Mockingjay's `SpecPredictionHead`: dense, GELU, layer norm, then a linear map to the frames."""

  def __init__(self, dim: int, out_dim: int, *, rngs: nnx.Rngs):
    self.dense = nnx.Linear(dim, dim, rngs=rngs)
    self.norm = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.out = nnx.Linear(dim, out_dim, rngs=rngs)

  def __call__(self, h):
    return self.out(self.norm(jax.nn.gelu(self.dense(h), approximate=False)))


class FrameTransformer(nnx.Module):
  """Mockingjay / TERA: input projection + fixed sinusoidal positions + layer norm, a post-norm
  Transformer (BERT's), and the spectrogram head. Padding frames take no part in attention."""

  def __init__(self, *, in_dim: int, dim: int, depth: int, num_heads: int, mlp_dim: int, dropout: float = 0.1,
               head: bool = True, rngs: nnx.Rngs):
    self.proj = nnx.Linear(in_dim, dim, rngs=rngs)
    self.norm = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.encoder = TransformerEncoder(dim, depth, num_heads, mlp_dim, pre_norm=False, dropout=dropout, eps=1e-12,
                                      rngs=rngs)
    # head=False: the encoder alone (the temporal pretext task has its own head)
    self.head = SpecHead(dim, in_dim, rngs=rngs) if head else None
    self.rate, self.num_features = dropout, dim

  def encode(self, feats: jax.Array, valid: jax.Array, key: jax.Array | None = None):
    k_in, k_enc = (None, None) if key is None else jax.random.split(key)
    x = self.proj(feats) + jnp.asarray(sinusoid_positions(feats.shape[1], self.num_features))
    x = dropout(self.norm(x), self.rate, k_in)
    h, layers = self.encoder(x, valid, k_enc)
    return h, {"input": x, **layers}

  def __call__(self, feats: jax.Array, valid: jax.Array, key: jax.Array | None = None):
    """feats [B, T, F] (altered), valid [B, T] -> (reconstructed frames [B, T, F], hidden [B, T, D])."""
    h = self.encode(feats, valid, key)[0]
    return self.head(h), h


class FrameGRU(nnx.Module):
  """APC: a linear input projection, `depth` GRU layers (residual connections from the second on,
  s3prl's `residual: True`; dropout between layers) and a linear map to the frames (`postnet`).
  Unidirectional, so padding after the valid frames never reaches them."""

  def __init__(self, *, in_dim: int, dim: int, depth: int, dropout: float = 0.1, rngs: nnx.Rngs):
    self.proj = nnx.Linear(in_dim, dim, rngs=rngs)
    self.layers = nnx.List([nnx.RNN(nnx.GRUCell(dim, dim, rngs=rngs), rngs=False) for _ in range(depth)])
    self.postnet = nnx.Linear(dim, in_dim, rngs=rngs)
    self.rate, self.num_features = dropout, dim

  def encode(self, feats: jax.Array, valid: jax.Array, key: jax.Array | None = None):
    keys = [None] * len(self.layers) if key is None else list(jax.random.split(key, len(self.layers)))
    x = self.proj(feats)
    out = {"input": x}
    for i, (layer, k) in enumerate(zip(self.layers, keys)):
      h = layer(x, initial_carry=jnp.zeros((x.shape[0], self.num_features), x.dtype))
      x = h + x if i > 0 else h
      out[f"layer_{i}"] = x
      if i < len(self.layers) - 1:
        x = dropout(x, self.rate, k)
    return x, out

  def __call__(self, feats: jax.Array, valid: jax.Array, key: jax.Array | None = None):
    """feats [B, T, F] -> (predictions [B, T, F] of the frames `method.shift` ahead, hidden [B, T, D])."""
    h = self.encode(feats, valid, key)[0]
    return self.postnet(h), h
