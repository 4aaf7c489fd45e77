"""An encoder-decoder Transformer (Vaswani et al. 2017) for T5's span corruption, BART's denoising
and translation (CoVe): a `TransformerEncoder` over the source, a decoder whose layers attend
causally to the target so far and then to the encoder's output (cross-attention), one token
embedding shared by both sides and the output projection (tied, as BART and T5 v1.0).

Positions are learned absolute embeddings on both sides (BART's choice; T5 uses relative
position buckets, left out here: the objectives are what the library compares). Decoding keeps a
key/value cache of the decoder's self-attention and computes the cross-attention keys and values
of the encoder output once (`init_cache`, `decode_step`, `greedy_decode`).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from sslax.models.attention import DEFAULT_BLOCK, attention
from sslax.models.transformer import SelfAttention, TransformerEncoder, _split, dropout

_normal = nnx.initializers.normal(stddev=0.02)



class CrossAttention(nnx.Module):
  """Queries from the decoder, keys and values from the encoder output (its padding masked)."""

  def __init__(self, dim: int, num_heads: int, *, rngs: nnx.Rngs):
    if dim % num_heads:
      raise ValueError(f"model.num_heads: expected a divisor of model.dim={dim}, got {num_heads}")
    self.num_heads = num_heads
    self.q = nnx.Linear(dim, dim, kernel_init=_normal, rngs=rngs)
    self.kv = nnx.Linear(dim, 2 * dim, kernel_init=_normal, rngs=rngs)
    self.out = nnx.Linear(dim, dim, kernel_init=_normal, rngs=rngs)

  def memory_kv(self, memory: jax.Array) -> tuple[jax.Array, jax.Array]:
    """memory [B, S, D] -> (k, v) [B, S, H, Dh], computed once per source when decoding."""
    k, v = rearrange(self.kv(memory), "b s (two h d) -> two b s h d", two=2, h=self.num_heads)
    return k, v

  def __call__(self, x: jax.Array, kv: tuple[jax.Array, jax.Array], memory_valid: jax.Array) -> jax.Array:
    """x [B, T, D], kv from `memory_kv`, memory_valid [B, S] bool -> [B, T, D]."""
    q = rearrange(self.q(x), "b t (h d) -> b t h d", h=self.num_heads)
    out = attention(q, *kv, memory_valid)  # a mask, not an additive bias (the fused kernels take masks)
    return self.out(rearrange(out, "b t h d -> b t (h d)"))


class DecoderLayer(nnx.Module):
  """Causal self-attention, cross-attention, MLP; each sublayer with dropout before its residual
  sum, layer norms after (post-norm, BART) or before (pre-norm) each."""

  def __init__(self, dim: int, num_heads: int, mlp_dim: int, *, pre_norm: bool, dropout: float = 0.0,
               eps: float = 1e-5, attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK, rngs: nnx.Rngs):
    self.self_attn = SelfAttention(dim, num_heads, attention_impl=attention_impl, attention_block=attention_block,
                                   rngs=rngs)
    self.cross_attn = CrossAttention(dim, num_heads, rngs=rngs)
    self.norms = nnx.List([nnx.LayerNorm(dim, epsilon=eps, rngs=rngs) for _ in range(3)])
    self.fc1 = nnx.Linear(dim, mlp_dim, kernel_init=_normal, rngs=rngs)
    self.fc2 = nnx.Linear(mlp_dim, dim, kernel_init=_normal, rngs=rngs)
    self.pre_norm, self.rate = pre_norm, dropout

  def _sublayer(self, i, x, fn, key):
    h = fn(self.norms[i](x) if self.pre_norm else x)
    x = x + dropout(h, self.rate, key)
    return x if self.pre_norm else self.norms[i](x)

  def __call__(self, x, valid, kv, memory_valid, key=None, *, cache=None):
    """x [B, T, D] (valid [B, T] bool); returns x, or (x, new cache) with `cache` (`SelfAttention`)."""
    k1, k2, k3 = _split(key, 3)
    new_cache = None

    def attend(h):
      nonlocal new_cache
      if cache is not None:
        out, new_cache = self.self_attn(h, cache=cache)
        return out
      return self.self_attn(h, valid, causal=True)

    x = self._sublayer(0, x, attend, k1)
    x = self._sublayer(1, x, lambda h: self.cross_attn(h, kv, memory_valid), k2)
    x = self._sublayer(2, x, lambda h: self.fc2(jax.nn.gelu(self.fc1(h), approximate=False)), k3)
    return x if cache is None else (x, new_cache)


class EncoderDecoder(nnx.Module):
  """Source ids -> encoder states; target ids (shifted right) -> next-token logits over the vocabulary."""

  def __init__(self, *, vocab_size: int, max_len: int = 512, dim: int = 512, encoder_depth: int = 6,
               decoder_depth: int = 6, num_heads: int = 8, mlp_dim: int = 2048, dropout: float = 0.1,
               pre_norm: bool = False, attention_impl: str = "auto", attention_block: int = DEFAULT_BLOCK,
               rngs: nnx.Rngs):
    attn = {"attention_impl": attention_impl, "attention_block": attention_block}
    self.tok_embed = nnx.Embed(vocab_size, dim, embedding_init=_normal, rngs=rngs)
    self.enc_pos = nnx.Embed(max_len, dim, embedding_init=_normal, rngs=rngs)
    self.dec_pos = nnx.Embed(max_len, dim, embedding_init=_normal, rngs=rngs)
    self.enc_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
    self.dec_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
    self.encoder = TransformerEncoder(dim, encoder_depth, num_heads, mlp_dim, pre_norm=pre_norm, dropout=dropout,
                                      **attn, rngs=rngs)
    self.decoder = nnx.List([DecoderLayer(dim, num_heads, mlp_dim, pre_norm=pre_norm, dropout=dropout, **attn,
                                          rngs=rngs)
                             for _ in range(decoder_depth)])
    self.final_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs) if pre_norm else None
    self.rate, self.max_len, self.num_features, self.num_heads = dropout, max_len, dim, num_heads

  def _check(self, ids, what):
    if ids.shape[1] > self.max_len:
      raise ValueError(f"{what}: expected at most model.max_len={self.max_len} tokens, got {ids.shape[1]}")

  def encode(self, ids: jax.Array, valid: jax.Array, key: jax.Array | None = None):
    """ids, valid [B, S] -> (states [B, S, D], {"layer_<i>": ...}); `key` None: no dropout."""
    self._check(ids, "source ids")
    k_emb, k_enc = _split(key, 2)
    x = self.tok_embed(ids) + self.enc_pos(jnp.arange(ids.shape[1])[None])
    x = dropout(self.enc_norm(x), self.rate, k_emb)
    return self.encoder(x, valid, k_enc)

  def _embed_target(self, ids, start):
    x = self.tok_embed(ids) + self.dec_pos(start + jnp.arange(ids.shape[1])[None])
    return self.dec_norm(x)

  def logits(self, x: jax.Array) -> jax.Array:
    if self.final_norm is not None:
      x = self.final_norm(x)
    return self.tok_embed.attend(x)

  def decode(self, ids: jax.Array, valid: jax.Array, memory: jax.Array, memory_valid: jax.Array,
             key: jax.Array | None = None) -> jax.Array:
    """Teacher-forced decoder: target inputs ids, valid [B, T] over memory [B, S, D] -> logits [B, T, V]."""
    self._check(ids, "target ids")
    k_emb, *keys = _split(key, 1 + len(self.decoder))
    x = dropout(self._embed_target(ids, 0), self.rate, k_emb)
    for layer, k in zip(self.decoder, keys):
      x = layer(x, valid, layer.cross_attn.memory_kv(memory), memory_valid, k)
    return self.logits(x)

  def __call__(self, src: jax.Array, src_valid: jax.Array, tgt_in: jax.Array, tgt_valid: jax.Array, *,
               key: jax.Array | None = None):
    """(logits [B, T, V], {"encoder": [B, S, D] encoder states}) of a teacher-forced pass."""
    k_enc, k_dec = _split(key, 2)
    memory, _ = self.encode(src, src_valid, k_enc)
    return self.decode(tgt_in, tgt_valid, memory, src_valid, k_dec), {"encoder": memory}

  def init_cache(self, memory: jax.Array, max_len: int | None = None) -> dict:
    """An empty self-attention cache per decoder layer and the cross-attention keys / values of
    `memory` [B, S, D], for `decode_step`."""
    b, dim = memory.shape[0], self.num_features
    shape = (b, max_len or self.max_len, self.num_heads, dim // self.num_heads)
    return {"self": [{"k": jnp.zeros(shape, memory.dtype), "v": jnp.zeros(shape, memory.dtype),
                      "pos": jnp.zeros((), jnp.int32)} for _ in self.decoder],
            "cross": [layer.cross_attn.memory_kv(memory) for layer in self.decoder]}

  def decode_step(self, ids: jax.Array, cache: dict, memory_valid: jax.Array):
    """The next target tokens ids [B, T] (at positions cache pos .. pos + T - 1) -> (logits
    [B, T, V], new cache)."""
    start = cache["self"][0]["pos"]
    x = self._embed_target(ids, start)
    new_self = []
    for layer, c, kv in zip(self.decoder, cache["self"], cache["cross"]):
      x, c = layer(x, None, kv, memory_valid, cache=c)
      new_self.append(c)
    return self.logits(x), {"self": new_self, "cross": cache["cross"]}


def greedy_decode(model: EncoderDecoder, src: jax.Array, src_valid: jax.Array, *, start_id: int, num_tokens: int
                  ) -> jax.Array:
  """Greedy decoding with the key/value cache: [B, num_tokens] int32 ids (after `start_id`)."""
  graphdef, state = nnx.split(model)
  return _greedy(graphdef, state, src, src_valid, start_id, num_tokens)


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _greedy(graphdef, state, src, src_valid, start_id, num_tokens):
  model = nnx.merge(graphdef, state)
  memory, _ = model.encode(src, src_valid)
  cache = model.init_cache(memory, num_tokens)
  first = jnp.full((src.shape[0], 1), start_id, jnp.int32)

  def step(carry, _):
    ids, cache = carry
    logits, cache = model.decode_step(ids, cache, src_valid)
    nxt = jnp.argmax(logits[:, -1], -1).astype(jnp.int32)[:, None]
    return (nxt, cache), nxt[:, 0]

  _, out = jax.lax.scan(step, (first, cache), None, length=num_tokens)
  return out.T
