"""Jittable, key-driven token masking: BERT's 80/10/10 (Devlin et al., NAACL 2019) and SpanBERT's
geometric spans (Joshi et al., TACL 2020).

Targets are weighted by an explicit mask: token id 0 is a real token, so
"`labels > 0`" is never used to find the selected positions.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _replace(key, ids, selected, *, vocab_size: int, mask_id: int, mask_frac: float, random_frac: float,
             maskable):
  """Of the selected positions: mask_frac -> [MASK], random_frac -> a random (non-special) token,
  the rest unchanged."""
  k_kind, k_tok = jax.random.split(key)
  u = jax.random.uniform(k_kind, ids.shape)
  random_tokens = jax.random.randint(k_tok, ids.shape, 0, vocab_size)
  if maskable is not None:  # draw random replacements among ordinary tokens only
    random_tokens = jnp.where(maskable[random_tokens], random_tokens, ids)
  out = jnp.where(selected & (u < mask_frac), mask_id, ids)
  return jnp.where(selected & (u >= mask_frac) & (u < mask_frac + random_frac), random_tokens, out)


def bert_mask(key: jax.Array, ids: jax.Array, candidates: jax.Array, *, vocab_size: int, mask_id: int,
              select_prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1,
              maskable_vocab: jax.Array | None = None):
  """BERT's masked-LM corruption.

  Each candidate position is selected independently with `select_prob`; of
  the selected, `mask_frac` become [MASK], `random_frac` a random token and
  the rest stay, as in the BERT reference (`create_masked_lm_predictions`,
  there with an exact count per sequence; here per position, so the draw is
  a fixed-shape jittable function of the key).

  Args:
    ids: [B, L] int token ids.
    candidates: [B, L] bool, positions that may be selected (real, non-special tokens).
    maskable_vocab: optional [V] bool, token ids a random replacement may take.

  Returns:
    (inputs [B, L] int, targets [B, L] int (= ids), weights [B, L] float32, 1 at selected positions).
  """
  k_sel, k_rep = jax.random.split(key)
  selected = candidates & (jax.random.uniform(k_sel, ids.shape) < select_prob)
  inputs = _replace(k_rep, ids, selected, vocab_size=vocab_size, mask_id=mask_id, mask_frac=mask_frac,
                    random_frac=random_frac, maskable=maskable_vocab)
  return inputs, ids, selected.astype(jnp.float32)


def span_mask_tokens(key: jax.Array, ids: jax.Array, candidates: jax.Array, *, vocab_size: int, mask_id: int,
                     select_prob: float = 0.15, geometric_p: float = 0.2, max_span: int = 10,
                     mask_frac: float = 0.8, random_frac: float = 0.1, maskable_vocab: jax.Array | None = None):
  """SpanBERT's masking: spans with lengths ~ Geometric(p) clipped at `max_span` (mean 3.8 at p=0.2),
  starts chosen so that about `select_prob` of the candidates are covered; each span is replaced as a
  whole by [MASK] (mask_frac), random tokens (random_frac) or kept. Same shapes as `bert_mask`.

  Spans are laid on the sequence by their start position (may be cut by the end of the candidates).
  """
  k_len, k_start, k_rep = jax.random.split(key, 3)
  b, length = ids.shape
  p = jnp.asarray(geometric_p, jnp.float32)
  # truncated geometric: P(l) proportional to p (1-p)^(l-1), l = 1..max_span
  lengths_support = jnp.arange(1, max_span + 1)
  logits = jnp.log(p) + (lengths_support - 1) * jnp.log1p(-p)
  span_len = jax.random.categorical(k_len, logits, shape=(b, length)) + 1
  mean_len = jnp.sum(jnp.exp(logits - jax.scipy.special.logsumexp(logits)) * lengths_support)
  start = candidates & (jax.random.uniform(k_start, (b, length)) < select_prob / mean_len)
  # position j is covered when some start i <= j has i + span_len[i] > j
  pos = jnp.arange(length)
  reach = jnp.where(start, pos[None, :] + span_len, -1)  # [B, L] end (exclusive) of a span starting at i
  covered_until = jax.lax.cummax(reach, axis=1)
  selected = candidates & (covered_until > pos[None, :])
  # one replacement decision per span: the decision drawn at the span's start, carried along it
  span_id = jax.lax.cummax(jnp.where(start, pos[None, :], -1), axis=1)
  k_kind, k_tok = jax.random.split(k_rep)
  u_start = jax.random.uniform(k_kind, (b, length))
  u = jnp.take_along_axis(u_start, jnp.maximum(span_id, 0), axis=1)
  random_tokens = jax.random.randint(k_tok, ids.shape, 0, vocab_size)
  if maskable_vocab is not None:
    random_tokens = jnp.where(maskable_vocab[random_tokens], random_tokens, ids)
  inputs = jnp.where(selected & (u < mask_frac), mask_id, ids)
  inputs = jnp.where(selected & (u >= mask_frac) & (u < mask_frac + random_frac), random_tokens, inputs)
  return inputs, ids, selected.astype(jnp.float32)
