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


def next_sentence_pairs(key: jax.Array, ids: jax.Array, valid: jax.Array, *, cls_id: int, sep_id: int,
                        pad_id: int, not_next_prob: float = 0.5):
  """BERT's next-sentence prediction pairs from packed `[CLS] text [SEP]` rows, on device.

  Each row's text is cut at a random point into A and B; with `not_next_prob`
  B is replaced by the text at the same offsets of the next row in the batch
  (a random continuation), giving `[CLS] A [SEP] B [SEP]` of the same length.
  The last text token of a full row is dropped to make room for the middle [SEP].

  Args:
    ids: [B, L] rows framed `[CLS] t_0 .. t_{n-1} [SEP] pad...`; valid: [B, L] bool.

  Returns:
    (ids [B, L], type_ids [B, L] (0 for `[CLS] A [SEP]`, 1 for `B [SEP]`), valid [B, L],
    labels [B] int32: 0 is-next, 1 not-next (the reference's convention)).
  """
  b, length = ids.shape
  k_cut, k_next = jax.random.split(key)
  content = ids[:, 1:length - 2]  # at most L - 3 text tokens
  n = jnp.clip(jnp.sum(valid, axis=1) - 2, 0, length - 3)  # text tokens per row
  u = jax.random.uniform(k_cut, (b,))
  m = jnp.clip(1 + jnp.floor(u * (n - 1)).astype(jnp.int32), 1, jnp.maximum(n - 1, 1))
  labels = (jax.random.uniform(k_next, (b,)) < not_next_prob).astype(jnp.int32)
  source = jnp.where(labels[:, None] == 1, jnp.roll(content, -1, axis=0), content)
  p = jnp.arange(length)[None, :]
  m_, n_ = m[:, None], n[:, None]
  first = jnp.take_along_axis(content, jnp.clip(p - 1, 0, length - 4), axis=1)
  second = jnp.take_along_axis(source, jnp.clip(p - 2, 0, length - 4), axis=1)
  out = jnp.where(p == 0, cls_id, jnp.where(p <= m_, first, jnp.where(p == m_ + 1, sep_id, second)))
  out = jnp.where(p == n_ + 2, sep_id, out)
  new_valid = p <= n_ + 2
  out = jnp.where(new_valid, out, pad_id)
  type_ids = ((p >= m_ + 2) & new_valid).astype(jnp.int32)
  return out.astype(ids.dtype), type_ids, new_valid, labels


def span_boundaries(selected: jax.Array):
  """SpanBERT's span boundaries (Joshi et al., TACL 2020, §3.2): for every position of a masked
  span, the positions of the unmasked tokens just outside it and the position's offset in it.

  A span is a maximal run of selected positions (overlapping or touching spans drawn by
  `span_mask_tokens` merge into one run, so both boundary tokens are always unmasked, as in the
  reference, whose spans never overlap). A run at the start or end of a row is bounded by
  position 0 or L - 1 (a `[CLS]` / `[SEP]` row's specials are never selected, so this only
  happens on rows without them).

  Args:
    selected: [B, L] bool (or 0/1), the masked positions.

  Returns:
    (left [B, L] int32: s - 1, right [B, L] int32: e + 1, offset [B, L] int32: i - s, for a span
    covering s..e; at unselected positions left = right = the position itself and offset = 0).
  """
  selected = selected.astype(bool)
  length = selected.shape[1]
  pos = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), selected.shape)
  left = jax.lax.cummax(jnp.where(selected, -1, pos), axis=1)  # last unselected position <= i
  right = jax.lax.cummin(jnp.where(selected, length, pos), axis=1, reverse=True)  # first unselected >= i
  offset = jnp.where(selected, pos - left - 1, 0)
  return jnp.clip(left, 0, length - 1), jnp.clip(right, 0, length - 1), offset
