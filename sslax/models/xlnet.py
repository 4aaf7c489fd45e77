"""XLNet's network (Yang et al., NeurIPS 2019; zihangdai/xlnet `modeling.py`, Hugging Face
`XLNetModel`): Transformer-XL relative attention and two-stream self-attention, without memory
(segment recurrence) or relative segment encodings, which single-segment pretraining rows do
not use.

- Relative attention: score(i, j) = (q_i + u) . k_j + (q_i + v) . W_r r_{i-j}, r a sinusoidal
  embedding of the distance i - j (positions klen .. -qlen + 1, as `relative_positional_encoding`
  with attn_type 'bi'), u, v per-head biases (`r_w_bias`, `r_r_bias`); no absolute positions.
- Two streams share every weight: the content stream h starts from the token embeddings and
  attends as `content_allowed` says (a token may see itself), the query stream g starts from a
  learned vector (`mask_emb`), reads the content stream as keys and values and attends as
  `query_allowed` says (never itself): g_i knows its position, not its token, and predicts it.
- Each layer: attention, residual, layer norm; MLP (GELU), residual, layer norm (post-norm).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from sslax.models.transformer import _split, dropout

_normal = nnx.initializers.normal(stddev=0.02)


def relative_encoding(length: int, dim: int) -> jax.Array:
  """[2 * length, dim] sinusoidal embeddings of the distances length, length - 1, ..., -length + 1."""
  inv_freq = 1.0 / (10000 ** (jnp.arange(0, dim, 2.0) / dim))
  distance = jnp.arange(length, -length, -1.0)
  angles = distance[:, None] * inv_freq[None, :]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class RelativeAttention(nnx.Module):
  def __init__(self, dim: int, num_heads: int, *, rngs: nnx.Rngs):
    if dim % num_heads:
      raise ValueError(f"model.num_heads: expected a divisor of model.dim={dim}, got {num_heads}")
    self.num_heads, self.head_dim = num_heads, dim // num_heads
    self.q = nnx.Linear(dim, dim, use_bias=False, kernel_init=_normal, rngs=rngs)
    self.kv = nnx.Linear(dim, 2 * dim, use_bias=False, kernel_init=_normal, rngs=rngs)
    self.r = nnx.Linear(dim, dim, use_bias=False, kernel_init=_normal, rngs=rngs)
    self.o = nnx.Linear(dim, dim, use_bias=False, kernel_init=_normal, rngs=rngs)
    self.r_w_bias = nnx.Param(jnp.zeros((num_heads, self.head_dim)))
    self.r_r_bias = nnx.Param(jnp.zeros((num_heads, self.head_dim)))

  def queries(self, x):
    return rearrange(self.q(x), "b t (h d) -> b t h d", h=self.num_heads)

  def keys_values(self, x):
    return rearrange(self.kv(x), "b t (two h d) -> two b t h d", two=2, h=self.num_heads)

  def attend(self, q, k, v, kr, allowed):
    """q [B, T, H, Dh] over k, v [B, T, H, Dh] with kr [2T, H, Dh] (projected distances) where
    allowed [B, T, T] -> [B, T, D]."""
    length = q.shape[1]
    ac = jnp.einsum("bihd,bjhd->bhij", q + self.r_w_bias[...], k)
    bd_all = jnp.einsum("bihd,phd->bhip", q + self.r_r_bias[...], kr)  # p indexes distance length - p
    i, j = jnp.arange(length)[:, None], jnp.arange(length)[None, :]
    bd = jnp.take_along_axis(bd_all, jnp.broadcast_to(length - i + j, (length, length))[None, None], axis=-1)
    score = (ac + bd) / jnp.sqrt(jnp.asarray(self.head_dim, q.dtype))
    score = jnp.where(allowed[:, None], score, jnp.asarray(-1e30, score.dtype))
    out = jnp.einsum("bhij,bjhd->bihd", jax.nn.softmax(score.astype(jnp.float32), -1).astype(v.dtype), v)
    return self.o(rearrange(out, "b t h d -> b t (h d)"))


class XLNetLayer(nnx.Module):
  def __init__(self, dim: int, num_heads: int, mlp_dim: int, *, dropout: float, rngs: nnx.Rngs):
    self.attn = RelativeAttention(dim, num_heads, rngs=rngs)
    self.norm1 = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.fc1 = nnx.Linear(dim, mlp_dim, kernel_init=_normal, rngs=rngs)
    self.fc2 = nnx.Linear(mlp_dim, dim, kernel_init=_normal, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.rate = dropout

  def _post(self, x, attended, key):
    k1, k2 = _split(key, 2)
    x = self.norm1(x + dropout(attended, self.rate, k1))
    return self.norm2(x + dropout(self.fc2(jax.nn.gelu(self.fc1(x), approximate=False)), self.rate, k2))

  def __call__(self, h, g, pos, content_allowed, query_allowed, key=None):
    """One layer of both streams (g None: the content stream only)."""
    kh, kg = _split(key, 2)
    k, v = self.attn.keys_values(h)
    kr = rearrange(self.attn.r(pos), "p (h d) -> p h d", h=self.attn.num_heads)
    h_new = self._post(h, self.attn.attend(self.attn.queries(h), k, v, kr, content_allowed), kh)
    if g is None:
      return h_new, None
    return h_new, self._post(g, self.attn.attend(self.attn.queries(g), k, v, kr, query_allowed), kg)


class XLNet(nnx.Module):
  def __init__(self, *, vocab_size: int, max_len: int = 512, dim: int = 768, depth: int = 12, num_heads: int = 12,
               mlp_dim: int = 3072, dropout: float = 0.1, rngs: nnx.Rngs):
    self.tok_embed = nnx.Embed(vocab_size, dim, embedding_init=_normal, rngs=rngs)
    self.mask_emb = nnx.Param(_normal(rngs.params(), (dim,)))
    self.layers = nnx.List([XLNetLayer(dim, num_heads, mlp_dim, dropout=dropout, rngs=rngs) for _ in range(depth)])
    self.lm_bias = nnx.Param(jnp.zeros((vocab_size,)))
    self.rate, self.max_len, self.num_features = dropout, max_len, dim

  def __call__(self, ids: jax.Array, content_allowed: jax.Array, query_allowed: jax.Array | None = None, *,
               key: jax.Array | None = None):
    """ids [B, T]; content_allowed / query_allowed [B, T, T] bool (query i may read key j).

    Returns (content states [B, T, D], query states [B, T, D] or None without `query_allowed`,
    {"layer_<i>": content states}).
    """
    if ids.shape[1] > self.max_len:
      raise ValueError(f"ids: expected at most model.max_len={self.max_len} tokens, got {ids.shape[1]}")
    k_h, k_g, *keys = _split(key, 2 + len(self.layers))
    h = dropout(self.tok_embed(ids), self.rate, k_h)
    g = None
    if query_allowed is not None:
      g = dropout(jnp.broadcast_to(self.mask_emb[...].astype(h.dtype), h.shape), self.rate, k_g)
    pos = relative_encoding(ids.shape[1], self.num_features).astype(h.dtype)
    features = {}
    for i, (layer, k) in enumerate(zip(self.layers, keys)):
      h, g = layer(h, g, pos, content_allowed, query_allowed, k)
      features[f"layer_{i}"] = h
    return h, g, features

  def lm_logits(self, x: jax.Array) -> jax.Array:
    """States [..., D] -> vocabulary logits through the tied embedding."""
    return self.tok_embed.attend(x) + self.lm_bias[...]
