"""A Transformer stack with a padding mask, post- or pre-norm, optionally causal with a key/value
cache (Vaswani et al., 2017).

Used by wav2vec 2.0's context network (post-norm in BASE, as fairseq's
`layer_norm_first=False`), BERT (post-norm) and GPT (pre-norm, causal). Dropout takes an explicit PRNG key (None: no
dropout), so every random draw comes from the train step's key.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from einops import rearrange
from flax import nnx
from jax import lax
from jax.extend.random import threefry2x32_p

from sslax.models.attention import DEFAULT_BLOCK, attention, check_impl

_normal = nnx.initializers.normal(stddev=0.02)


_U16 = 1 << 16


def keep_mask(key: jax.Array, rate: float, shape) -> tuple[jax.Array, float]:
  """A dropout keep-mask of `shape` (bool) and its exact keep probability.

  `jax.random.bernoulli` spends one Threefry-2x32 call (64 random bits, XORed to 32) and a float
  uniform per element; a mask needs 16 bits. Here each call's two 32-bit words give four 16-bit
  uniforms, so a GPT step's masks cost a quarter of the Threefry work (on 2 CPU cores dropout was
  ~13% of the `gpt_text.py:cpu` step; `experiments/RESULTS.md`). For a mask (..., n), call
  (..., i) of m = ceil(n / 4) per row is counted by its index in (..., m), and element (..., j)
  is 16-bit piece j // m of call (..., j % m): the counters are an iota over the mask's own
  leading axes, so the mask is the same on any sharding and needs no communication (as JAX's
  partitionable Threefry). P(keep) = 1 - round(rate * 2^16) / 2^16, within
  2^-17 of 1 - rate; `dropout` scales by its inverse, so E[dropout(x)] = x exactly. Keys of other
  PRNG implementations, and masks of 2^32 calls or more, fall back to `jax.random.bernoulli`.
  """
  shape = tuple(shape)
  drop = round(rate * _U16)
  typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
  calls = (*shape[:-1], -(-shape[-1] // 4)) if shape else (1,)
  if (typed and jax.random.key_impl(key) != "threefry2x32") or math.prod(calls) >= 2**32:
    return jax.random.bernoulli(key, 1.0 - rate, shape), 1.0 - rate
  k1, k2 = jax.random.key_data(key) if typed else key
  # the flat index of each call in `calls` (< 2^32, checked above), from per-axis iotas as JAX's own
  # partitionable Threefry counts, so each device computes its shard's counters locally
  counts = sum(lax.broadcasted_iota(jnp.uint32, calls, d) * jnp.uint32(math.prod(calls[d + 1:]))
               for d in range(len(calls)))
  words = threefry2x32_p.bind(k1, k2, counts, jnp.zeros_like(counts))
  u16 = jnp.concatenate([w >> s & 0xFFFF for w in words for s in (0, 16)], axis=-1)
  keep = u16[..., :shape[-1]] >= drop if shape else u16[0] >= drop
  return keep, (_U16 - drop) / _U16


def dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
  """Inverted dropout (mask from `keep_mask`); the identity when `key` is None or `rate` is 0."""
  if key is None or rate == 0.0:
    return x
  keep, p = keep_mask(key, rate, x.shape)
  return jnp.where(keep, x / p, 0.0).astype(x.dtype)


def _split(key, n):
  return [None] * n if key is None else list(jax.random.split(key, n))


class SelfAttention(nnx.Module):
  """`attention_impl` / `attention_block`: the kernel of `sslax.models.attention` ('auto': blocked
  causal attention on the CPU, XLA's elsewhere)."""

  def __init__(self, dim: int, num_heads: int, *, attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK,
               rngs: nnx.Rngs):
    if dim % num_heads:
      raise ValueError(f"model.num_heads: expected a divisor of model.dim={dim}, got {num_heads}")
    check_impl(attention_impl, attention_block)
    self.num_heads, self.impl, self.block = num_heads, attention_impl, attention_block
    self.qkv = nnx.Linear(dim, 3 * dim, kernel_init=_normal, rngs=rngs)
    self.out = nnx.Linear(dim, dim, kernel_init=_normal, rngs=rngs)

  def __call__(self, x: jax.Array, mask: jax.Array | None = None, *, causal: bool = False, cache=None):
    """x [B, T, D]; mask [B, T] bool, True at real (non-padding) positions, or [B, T, T] bool, True
    where query t may attend to key s (packed sequences: same segment); `causal` lets position t see
    positions <= t only.

    With `cache` ({"k", "v": [B, M, H, Dh], "pos": int32 scalar}, see `init_cache`), x holds the
    next T tokens at absolute positions pos..pos+T-1: their keys and values are written into the
    cache and they attend (causally) to everything cached so far. Returns (out, new cache) then,
    else out [B, T, D].
    """
    q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b t h d", three=3, h=self.num_heads)
    if cache is not None:
      pos = cache["pos"]
      ck = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype), (0, pos, 0, 0))
      cv = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype), (0, pos, 0, 0))
      allowed = jnp.arange(ck.shape[1])[None, :] <= pos + jnp.arange(x.shape[1])[:, None]  # [T, M]
      out = jax.nn.dot_product_attention(q, ck, cv, mask=allowed[None, None])
      return self.out(rearrange(out, "b t h d -> b t (h d)")), {"k": ck, "v": cv, "pos": pos + x.shape[1]}
    out = attention(q, k, v, mask, causal=causal, impl=self.impl, block=self.block)
    return self.out(rearrange(out, "b t h d -> b t (h d)"))


class Adapter(nnx.Module):
  """A bottleneck adapter (Houlsby et al., ICML 2019): x + up(gelu(down(x))), `up` initialized to
  zero so that a freshly inserted adapter is the identity."""

  def __init__(self, dim: int, bottleneck: int, *, rngs: nnx.Rngs):
    self.down = nnx.Linear(dim, bottleneck, kernel_init=nnx.initializers.normal(1e-3), rngs=rngs)
    self.up = nnx.Linear(bottleneck, dim, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)

  def __call__(self, x):
    return x + self.up(jax.nn.gelu(self.down(x), approximate=False))


class EncoderLayer(nnx.Module):
  """`dropout` on the attention output and the MLP output, before each residual sum; `activation_dropout`
  (fairseq's name) on the MLP's hidden activation, 0 by default as in BERT, GPT-2 and wav2vec 2.0
  BASE, whose MLPs have no dropout there."""

  def __init__(self, dim: int, num_heads: int, mlp_dim: int, *, pre_norm: bool, dropout: float = 0.0,
               activation_dropout: float = 0.0, eps: float = 1e-5, adapter_dim: int = 0,
               approximate_gelu: bool = False, attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK,
               rngs: nnx.Rngs):
    # adapter_dim > 0: an adapter after the attention and after the MLP sublayer, before each residual
    # sum (Houlsby's placement), for fine-tuning with the rest of the network frozen
    self.adapter_attn = Adapter(dim, adapter_dim, rngs=rngs) if adapter_dim else None
    self.adapter_mlp = Adapter(dim, adapter_dim, rngs=rngs) if adapter_dim else None
    self.attn = SelfAttention(dim, num_heads, attention_impl=attention_impl, attention_block=attention_block,
                              rngs=rngs)
    self.norm1 = nnx.LayerNorm(dim, epsilon=eps, rngs=rngs)
    self.fc1 = nnx.Linear(dim, mlp_dim, kernel_init=_normal, rngs=rngs)
    self.fc2 = nnx.Linear(mlp_dim, dim, kernel_init=_normal, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=eps, rngs=rngs)
    self.pre_norm, self.rate, self.activation_rate = pre_norm, dropout, activation_dropout
    self.approximate_gelu = approximate_gelu  # the tanh form: GPT-2's "gelu_new"

  def __call__(self, x, mask=None, key=None, *, causal: bool = False, cache=None):
    """Returns x, or (x, new cache) when `cache` is given (see `SelfAttention`)."""
    k1, k2, k3 = _split(key, 3)
    h = self.norm1(x) if self.pre_norm else x
    attended = self.attn(h, mask, causal=causal, cache=cache)
    if cache is not None:
      attended, cache = attended
    attended = dropout(attended, self.rate, k1)
    x = x + (attended if self.adapter_attn is None else self.adapter_attn(attended))
    if not self.pre_norm:
      x = self.norm1(x)
    h = self.norm2(x) if self.pre_norm else x
    h = dropout(jax.nn.gelu(self.fc1(h), approximate=self.approximate_gelu), self.activation_rate, k2)
    h = dropout(self.fc2(h), self.rate, k3)
    x = x + (h if self.adapter_mlp is None else self.adapter_mlp(h))
    x = x if self.pre_norm else self.norm2(x)
    return x if cache is None else (x, cache)


class TransformerEncoder(nnx.Module):
  """x [B, T, D], mask [B, T] -> (x [B, T, D], {"layer_<i>": [B, T, D]})."""

  def __init__(self, dim: int, depth: int, num_heads: int, mlp_dim: int, *, pre_norm: bool = False,
               dropout: float = 0.0, activation_dropout: float = 0.0, eps: float = 1e-5, adapter_dim: int = 0,
               approximate_gelu: bool = False, attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK,
               rngs: nnx.Rngs):
    self.layers = nnx.List([EncoderLayer(dim, num_heads, mlp_dim, pre_norm=pre_norm, dropout=dropout,
                                         activation_dropout=activation_dropout, eps=eps, adapter_dim=adapter_dim,
                                         approximate_gelu=approximate_gelu, attention_impl=attention_impl,
                                         attention_block=attention_block, rngs=rngs) for _ in range(depth)])
    # pre-norm stacks end with a norm; post-norm layers already end with one
    self.final_norm = nnx.LayerNorm(dim, epsilon=eps, rngs=rngs) if pre_norm else None
    self.num_heads, self.dim = num_heads, dim

  def __call__(self, x, mask=None, key=None, *, causal: bool = False):
    features = {}
    for i, (layer, k) in enumerate(zip(self.layers, _split(key, len(self.layers)))):
      x = layer(x, mask, k, causal=causal)
      features[f"layer_{i}"] = x
    if self.final_norm is not None:
      x = self.final_norm(x)
    return x, features

  def init_cache(self, batch: int, max_len: int, dtype=jnp.float32) -> list[dict]:
    """An empty key/value cache per layer for `decode`."""
    shape = (batch, max_len, self.num_heads, self.dim // self.num_heads)
    return [{"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype), "pos": jnp.zeros((), jnp.int32)}
            for _ in self.layers]

  def decode(self, x, cache: list[dict]):
    """Causal pass over the next tokens x [B, T, D] given `cache`; returns (x, new cache)."""
    new_cache = []
    for layer, c in zip(self.layers, cache):
      x, c = layer(x, cache=c)
      new_cache.append(c)
    if self.final_norm is not None:
      x = self.final_norm(x)
    return x, new_cache
