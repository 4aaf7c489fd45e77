"""BERT (Devlin et al., NAACL 2019) and GPT (Radford et al., 2018/2019) in Flax NNX.

BERT: token + position + segment embeddings, LayerNorm (eps 1e-12), post-norm
GELU layers; an MLM head (dense, GELU, LayerNorm, decoder tied to the token
embeddings plus a bias) and a pooler (dense + tanh on [CLS]) for
next-sentence prediction and classification. GPT: token + position
embeddings, pre-norm causal layers, a final LayerNorm, logits tied to the
token embeddings; a key/value cache for generation.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.models.attention import DEFAULT_BLOCK
from sslax.models.heads import SpanBoundaryHead
from sslax.models.transformer import TransformerEncoder, dropout

_normal = nnx.initializers.normal(stddev=0.02)


def packed_attention_mask(valid: jax.Array, segments: jax.Array | None) -> jax.Array:
  """valid [B, L] bool, segments [B, L] int (packed examples 1, 2, ...; 0 padding) -> the attention
  mask: [B, L] (padding only) without segments, else [B, L, L], True where both tokens are real and
  in the same packed example, so examples packed into one row never see each other."""
  if segments is None:
    return valid
  same = segments[:, :, None] == segments[:, None, :]
  return same & valid[:, :, None] & valid[:, None, :]


def attention_kwargs(model_config) -> dict:
  """`model.attention_impl` (default 'auto') and `model.attention_block` (default 64) of a config, as
  the keyword arguments of `BERT` and `GPT` (`sslax.models.attention`)."""
  return {"attention_impl": model_config.get("attention_impl", "auto"),
          "attention_block": model_config.get("attention_block", DEFAULT_BLOCK)}


def _positions(ids: jax.Array, positions: jax.Array | None) -> jax.Array:
  return jnp.broadcast_to(jnp.arange(ids.shape[1]), ids.shape) if positions is None else positions


class BERT(nnx.Module):
  def __init__(self, *, vocab_size: int, max_len: int = 512, dim: int = 768, depth: int = 12, num_heads: int = 12,
               mlp_dim: int = 3072, type_vocab_size: int = 2, dropout: float = 0.1, adapter_dim: int = 0,
               attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK, rngs: nnx.Rngs):
    self.tok_embed = nnx.Embed(vocab_size, dim, embedding_init=_normal, rngs=rngs)
    self.pos_embed = nnx.Embed(max_len, dim, embedding_init=_normal, rngs=rngs)
    self.type_embed = nnx.Embed(type_vocab_size, dim, embedding_init=_normal, rngs=rngs)
    self.embed_norm = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.encoder = TransformerEncoder(dim, depth, num_heads, mlp_dim, pre_norm=False, dropout=dropout, eps=1e-12,
                                      adapter_dim=adapter_dim, attention_impl=attention_impl,
                                      attention_block=attention_block, rngs=rngs)
    self.mlm_dense = nnx.Linear(dim, dim, kernel_init=_normal, rngs=rngs)
    self.mlm_norm = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.mlm_bias = nnx.Param(jnp.zeros((vocab_size,)))
    self.pooler = nnx.Linear(dim, dim, kernel_init=_normal, rngs=rngs)
    self.nsp = nnx.Linear(dim, 2, kernel_init=_normal, rngs=rngs)
    self.rate, self.max_len, self.num_features = dropout, max_len, dim

  def __call__(self, ids: jax.Array, valid: jax.Array, type_ids: jax.Array | None = None, *,
               key: jax.Array | None = None, segments: jax.Array | None = None,
               positions: jax.Array | None = None):
    """ids, valid [B, L] -> (hidden [B, L, D], {"pooled": [B, D], "cls": [B, D], "layer_<i>": ...}).

    Packed rows pass `segments` [B, L] (1, 2, ... per example, 0 padding: attention stays inside an
    example) and `positions` [B, L] (restarting at each example); `key` None: no dropout.
    """
    if ids.shape[1] > self.max_len:
      raise ValueError(f"ids: expected at most model.max_len={self.max_len} tokens, got {ids.shape[1]}")
    k_emb, k_enc = (None, None) if key is None else jax.random.split(key)
    type_ids = jnp.zeros_like(ids) if type_ids is None else type_ids
    x = self.tok_embed(ids) + self.pos_embed(_positions(ids, positions)) + self.type_embed(type_ids)
    x = dropout(self.embed_norm(x), self.rate, k_emb)
    h, features = self.encoder(x, packed_attention_mask(valid, segments), k_enc)
    pooled = jnp.tanh(self.pooler(h[:, 0]))
    return h, {"pooled": pooled, "cls": h[:, 0], **features}

  def mlm_logits(self, hidden: jax.Array) -> jax.Array:
    """hidden [B, L, D] (or [N, D]) -> vocabulary logits through the tied decoder."""
    h = self.mlm_norm(jax.nn.gelu(self.mlm_dense(hidden), approximate=False))
    return self.tok_embed.attend(h) + self.mlm_bias[...]

  def nsp_logits(self, pooled: jax.Array) -> jax.Array:
    return self.nsp(pooled)


class SpanBERT(BERT):
  """BERT with SpanBERT's span-boundary head (`SpanBoundaryHead`) and its own output bias; the
  vocabulary projection is tied to the token embeddings, as the MLM's (the reference ties both)."""

  def __init__(self, *, max_offsets: int, offset_dim: int, **bert):
    super().__init__(**bert)
    self.sbo = SpanBoundaryHead(self.num_features, max_offsets, offset_dim, rngs=bert["rngs"])
    self.sbo_bias = nnx.Param(jnp.zeros((bert["vocab_size"],)))

  def sbo_logits(self, left: jax.Array, right: jax.Array, offset: jax.Array) -> jax.Array:
    """Boundary outputs left, right [..., D] and offsets [...] -> vocabulary logits [..., V]."""
    return self.tok_embed.attend(self.sbo(left, right, offset)) + self.sbo_bias[...]


class GPT(nnx.Module):
  def __init__(self, *, vocab_size: int, max_len: int = 1024, dim: int = 768, depth: int = 12, num_heads: int = 12,
               mlp_dim: int = 3072, dropout: float = 0.1, adapter_dim: int = 0, gelu: str = "exact",
               attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK, rngs: nnx.Rngs):
    # gelu "tanh": the approximation GPT-2 was trained with (its "gelu_new"), for imported weights
    if gelu not in ("exact", "tanh"):
      raise ValueError(f"model.gelu: expected 'exact' or 'tanh', got {gelu!r}")
    self.tok_embed = nnx.Embed(vocab_size, dim, embedding_init=_normal, rngs=rngs)
    self.pos_embed = nnx.Embed(max_len, dim, embedding_init=nnx.initializers.normal(0.01), rngs=rngs)
    self.decoder = TransformerEncoder(dim, depth, num_heads, mlp_dim, pre_norm=True, dropout=dropout,
                                      adapter_dim=adapter_dim, approximate_gelu=gelu == "tanh",
                                      attention_impl=attention_impl, attention_block=attention_block, rngs=rngs)
    self.rate, self.max_len, self.num_features = dropout, max_len, dim

  def __call__(self, ids: jax.Array, valid: jax.Array | None = None, *, key: jax.Array | None = None,
               segments: jax.Array | None = None, positions: jax.Array | None = None):
    """ids [B, L] -> (logits [B, L, V], {"hidden": [B, L, D], "layer_<i>": ...}); causal. `segments`
    and `positions` of packed rows as in `BERT.__call__`."""
    if ids.shape[1] > self.max_len:
      raise ValueError(f"ids: expected at most model.max_len={self.max_len} tokens, got {ids.shape[1]}")
    k_emb, k_dec = (None, None) if key is None else jax.random.split(key)
    x = dropout(self.tok_embed(ids) + self.pos_embed(_positions(ids, positions)), self.rate, k_emb)
    mask = None if valid is None else packed_attention_mask(valid, segments)
    h, features = self.decoder(x, mask, k_dec, causal=True)
    return self.tok_embed.attend(h), {"hidden": h, **features}

  def init_cache(self, batch: int, max_len: int | None = None):
    return self.decoder.init_cache(batch, max_len or self.max_len)

  def decode(self, ids: jax.Array, cache):
    """The next tokens ids [B, T] at the cache's position -> (logits [B, T, V], new cache)."""
    pos = cache[0]["pos"]
    x = self.tok_embed(ids) + self.pos_embed(pos + jnp.arange(ids.shape[1]))[None]
    h, cache = self.decoder.decode(x, cache)
    return self.tok_embed.attend(h), cache


def check_sampling(*, temperature, top_k, vocab_size: int, prefix: str = "") -> None:
  """Raises ValueError naming the option unless temperature is finite and >= 0 (0: greedy) and
  top_k an integer in [0, vocab_size] (0: the whole vocabulary). A negative temperature would
  divide the logits by it and sample the least likely tokens. `prefix`: "--" names CLI flags."""
  if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)) \
      or not math.isfinite(temperature) or temperature < 0:
    raise ValueError(f"{prefix}temperature: expected a finite number >= 0 (0: greedy), got {temperature!r}")
  if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 0 <= top_k <= vocab_size:
    raise ValueError(f"{prefix}top_k: expected an integer in [0, {vocab_size}] (0: every token), got {top_k!r}")


def sample_next(key: jax.Array, logits: jax.Array, *, temperature: float = 1.0, top_k: int = 0) -> jax.Array:
  """logits [B, V] -> token ids [B]: greedy when temperature is 0, else sampled from the top k (0: all)."""
  if temperature == 0.0:
    return jnp.argmax(logits, axis=-1)
  logits = logits.astype(jnp.float32) / temperature
  if top_k:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  return jax.random.categorical(key, logits, axis=-1)


def generate(model: GPT, prompt: jax.Array, num_tokens: int, key: jax.Array, *, temperature: float = 1.0,
             top_k: int = 0, use_cache: bool = True) -> jax.Array:
  """Continues prompt [B, P] by `num_tokens` tokens; returns [B, P + num_tokens].

  With the cache, the whole generation is one compiled program: the prompt
  is run once, then a `lax.scan` samples a token and runs its one position
  per step. Without it, the whole sequence is re-run per token (one program
  per length: the reference the cache is tested against). Same keys, same
  tokens.
  """
  p = prompt.shape[1]
  check_sampling(temperature=temperature, top_k=top_k, vocab_size=model.tok_embed.num_embeddings)
  if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) or num_tokens < 0:
    raise ValueError(f"num_tokens: expected an integer >= 0, got {num_tokens!r}")
  if p + num_tokens > model.max_len:
    raise ValueError(f"num_tokens: prompt ({p}) + new tokens ({num_tokens}) exceed model.max_len={model.max_len}")
  if num_tokens == 0:
    return prompt
  graphdef, state = nnx.split(model)
  keys = jax.random.split(key, num_tokens)
  if use_cache:
    return _generate_with_cache(graphdef, state, prompt, keys, temperature=temperature, top_k=top_k)
  seq = prompt
  for k in keys:
    seq = jnp.concatenate([seq, _next_without_cache(graphdef, state, seq, k, temperature=temperature,
                                                    top_k=top_k)[:, None]], axis=1)
  return seq


@functools.partial(jax.jit, static_argnums=0, static_argnames=("temperature", "top_k"))
def _generate_with_cache(graphdef, state, prompt, keys, *, temperature, top_k):
  model = nnx.merge(graphdef, state)
  logits, cache = model.decode(prompt, model.init_cache(prompt.shape[0], prompt.shape[1] + keys.shape[0]))

  def one_token(carry, key):
    last, cache = carry
    nxt = sample_next(key, last, temperature=temperature, top_k=top_k)
    logits, cache = model.decode(nxt[:, None], cache)
    return (logits[:, -1], cache), nxt

  (last, _), tokens = jax.lax.scan(one_token, (logits[:, -1], cache), keys[:-1])
  final = sample_next(keys[-1], last, temperature=temperature, top_k=top_k)  # no position to run after it
  return jnp.concatenate([prompt, tokens.T, final[:, None]], axis=1)


@functools.partial(jax.jit, static_argnums=0, static_argnames=("temperature", "top_k"))
def _next_without_cache(graphdef, state, seq, key, *, temperature, top_k):
  logits, _ = nnx.merge(graphdef, state)(seq)
  return sample_next(key, logits[:, -1], temperature=temperature, top_k=top_k)
