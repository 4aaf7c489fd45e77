"""XLNet's permutation language modelling as attention masks (Yang et al., NeurIPS 2019), drawn on
device from a key: which tokens are predicted (partial prediction) and which may see which under
a random factorization order.

- `plm_targets`: Hugging Face `DataCollatorForPermutationLanguageModeling`'s span scheme,
  vectorized: the row is cut into consecutive blocks of int(l / plm_probability) tokens for span
  lengths l ~ U{1..max_span}, one span of l targets at a uniform offset in each block, so about
  plm_probability of the tokens are targets (1/K with the paper's K = 6), specials never.
- `permutation_masks`: a uniformly random order of the targets; non-targets come first (every
  token sees them, they see only each other), as `_local_perm` of zihangdai/xlnet. Query i may
  read key j when j is not a target or comes before i in the order; the content stream
  additionally lets a token read itself.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def plm_targets(key: jax.Array, candidates: jax.Array, *, plm_probability: float = 1 / 6, max_span: int = 5):
  """[B, L] bool: the tokens to predict, spans of 1..max_span about plm_probability of each row."""
  b, length = candidates.shape
  k_len, k_off = jax.random.split(key)
  blocks = length  # an upper bound: every block holds at least one token
  span = jax.random.randint(k_len, (b, blocks), 1, max_span + 1)
  block = jnp.floor(span / plm_probability).astype(jnp.int32)
  begin = jnp.cumsum(block, axis=1) - block
  start = begin + jnp.floor(jax.random.uniform(k_off, (b, blocks)) * (block - span + 1)).astype(jnp.int32)
  end = jnp.where(begin < length, start + span, 0)
  pos = jnp.arange(length)
  # spans are disjoint and in order: position p is a target when the last span starting at or
  # before it reaches past it
  reach = jnp.zeros((b, length), jnp.int32).at[jnp.arange(b)[:, None], jnp.clip(start, 0, length - 1)].max(
      jnp.where(start < length, end, 0))
  return (jax.lax.cummax(reach, axis=1) > pos[None]) & candidates


def _allowed(rank: jax.Array, targets: jax.Array, valid: jax.Array, segments: jax.Array | None):
  """(content, query) [B, L, L] from each token's place in the order (-1 for non-targets)."""
  sees = valid[:, None, :] & (~targets[:, None, :] | (rank[:, None, :] < rank[:, :, None]))
  if segments is not None:
    sees = sees & (segments[:, :, None] == segments[:, None, :])
  eye = jnp.eye(rank.shape[1], dtype=bool)[None]
  return sees | (eye & valid[:, :, None]), sees


def permutation_masks(key: jax.Array, targets: jax.Array, valid: jax.Array, segments: jax.Array | None = None):
  """(content_allowed, query_allowed) [B, L, L] bool under a random factorization order of the
  targets; `segments` (packed rows) keeps attention inside each example."""
  order = jax.random.uniform(key, targets.shape)
  rank = jnp.argsort(jnp.argsort(order, axis=1), axis=1)
  return _allowed(jnp.where(targets, rank, -1), targets, valid, segments)


def left_to_right_masks(valid: jax.Array, segments: jax.Array | None = None):
  """(content_allowed, query_allowed) of the identity order with every token a target: the query
  stream at position t reads positions < t only, an ordinary left-to-right language model (how
  XLNet's held-out perplexity compares with GPT's)."""
  rank = jnp.broadcast_to(jnp.arange(valid.shape[1]), valid.shape)
  return _allowed(rank, valid, valid, segments)
