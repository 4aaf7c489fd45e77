"""Jittable, key-driven noise for sequence-to-sequence pretraining: T5's span corruption (Raffel
et al., JMLR 2020) and BART's text infilling and sentence permutation (Lewis et al., ACL 2020).
Every function draws from the key it is given, on device, with static shapes.

T5 follows Hugging Face `run_t5_mlm_flax.py` (itself a port of the T5 code's
`random_spans_noise_mask`): a row of `tokens_length` tokens gets exactly
round(tokens_length * noise_density) noise tokens in round(noise / mean_noise_span_length)
spans, noise and non-noise span lengths drawn as random partitions, the row starting with
non-noise; each noise span becomes one sentinel in the input, each non-noise span one sentinel in
the target, sentinels counted down from the top of the vocabulary (`<extra_id_0>` is the last
id), both ending with EOS. Input and target lengths are therefore fixed by the three numbers
(`t5_lengths`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def noise_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
  """(noise tokens, noise spans) of a row: the reference's rounding, kept to at least one noise
  and one non-noise token and one span (its "avoid degeneracy" clamps)."""
  noise = min(max(int(round(length * noise_density)), 1), length - 1)
  return noise, max(1, min(int(round(noise / mean_noise_span_length)), noise, length - noise))


def _corrupted_lengths(tokens_length: int, noise_density: float, mean_noise_span_length: float):
  noise, spans = noise_counts(tokens_length, noise_density, mean_noise_span_length)
  return tokens_length - noise + spans + 1, noise + spans + 1


def t5_lengths(inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0):
  """(tokens_length, targets_length): the longest raw row whose corrupted input is at most
  `inputs_length` tokens, and its target length (`compute_input_and_target_lengths` of the
  reference, including its noise_density = 0.5 adjustment)."""
  if not 0 < noise_density < 1:
    raise ValueError(f"method.noise_density: expected a number in (0, 1), got {noise_density}")
  if mean_noise_span_length < 1:
    raise ValueError(f"method.mean_noise_span_length: expected at least 1, got {mean_noise_span_length}")
  tokens_length = inputs_length
  while _corrupted_lengths(tokens_length + 1, noise_density, mean_noise_span_length)[0] <= inputs_length:
    tokens_length += 1
  _, targets_length = _corrupted_lengths(tokens_length, noise_density, mean_noise_span_length)
  if noise_density == 0.5 and targets_length > inputs_length:
    tokens_length -= 1
    targets_length -= 1
  return tokens_length, targets_length


def _random_segmentation(key, num_items: int, num_segments: int) -> jax.Array:
  """[num_segments] positive lengths summing to num_items, a uniformly random partition."""
  first = jnp.arange(num_items - 1) < num_segments - 1
  first = jnp.concatenate([jnp.zeros((1,), bool), jax.random.permutation(key, first)])
  segment = jnp.cumsum(first)
  return jnp.zeros((num_segments,), jnp.int32).at[segment].add(1)


def random_spans_noise_mask(key: jax.Array, length: int, noise_density: float = 0.15,
                            mean_noise_span_length: float = 3.0) -> jax.Array:
  """[length] bool, True on the noise tokens: exactly round(length * noise_density) of them in
  round(noise / mean) spans (at least one), never at position 0."""
  noise, spans = noise_counts(length, noise_density, mean_noise_span_length)
  k_noise, k_keep = jax.random.split(key)
  interleaved = jnp.stack([_random_segmentation(k_keep, length - noise, spans),
                           _random_segmentation(k_noise, noise, spans)], axis=1).reshape(-1)
  starts = jnp.cumsum(interleaved)[:-1]
  indicator = jnp.zeros((length,), jnp.int32).at[starts].set(1)
  return jnp.cumsum(indicator) % 2 == 1


def _replace_spans(ids, mask, first_sentinel: int, out_len: int, eos_id: int, pad_id: int):
  """Each run of `mask` in a row -> one sentinel (first_sentinel, first_sentinel - 1, ...), the
  rest kept, compacted into [out_len] ending with EOS (the reference's `filter_input_ids`)."""
  start = mask & ~jnp.concatenate([jnp.zeros((1,), bool), mask[:-1]])
  sentinel = first_sentinel + 1 - jnp.cumsum(start)
  values = jnp.where(start, sentinel, ids)
  keep = ~mask | start
  where = jnp.where(keep, jnp.cumsum(keep) - 1, out_len)
  out = jnp.full((out_len,), pad_id, ids.dtype).at[where].set(values.astype(ids.dtype), mode="drop")
  return out.at[jnp.sum(keep)].set(eos_id, mode="drop")


def t5_span_corruption(key: jax.Array, ids: jax.Array, *, vocab_size: int, eos_id: int, pad_id: int,
                       noise_density: float = 0.15, mean_noise_span_length: float = 3.0):
  """T5's span corruption of full rows.

  Args:
    ids: [B, N] int, N = `t5_lengths(inputs_length, ...)[0]` real tokens per row.
    vocab_size: the model's vocabulary; sentinels are its last ids (vocab_size - 1 down).

  Returns:
    (inputs [B, N_in] int, targets [B, N_out] int, noise [B, N] bool), N_in / N_out from the
    noise counts (each row ends with EOS; a row is padded if its counts are smaller, never here).
  """
  b, length = ids.shape
  noise = jax.vmap(lambda k: random_spans_noise_mask(k, length, noise_density, mean_noise_span_length))(
      jax.random.split(key, b))
  n_in, n_out = _corrupted_lengths(length, noise_density, mean_noise_span_length)
  top = vocab_size - 1
  inputs = jax.vmap(lambda x, m: _replace_spans(x, m, top, n_in, eos_id, pad_id))(ids, noise)
  targets = jax.vmap(lambda x, m: _replace_spans(x, m, top, n_out, eos_id, pad_id))(ids, ~noise)
  return inputs, targets, noise


def permute_sentences(key: jax.Array, ids: jax.Array, valid: jax.Array, *, eos_id: int) -> jax.Array:
  """BART's sentence permutation (fairseq `permute_sentences`, p = 1): the sentences of each row
  (runs ending with `eos_id`; a row's cut first and last pieces count as sentences) in a random
  order, padding kept at the end. ids, valid [B, L] -> ids [B, L]."""
  b, length = ids.shape
  sentence = jnp.cumsum(ids == eos_id, axis=1) - (ids == eos_id)  # eos closes its own sentence
  priority = jax.random.uniform(key, (b, length))
  order_key = jnp.where(valid, jnp.take_along_axis(priority, sentence, axis=1), 2.0)
  order = jnp.argsort(order_key, axis=1, stable=True)  # within a sentence, the token order is kept
  return jnp.take_along_axis(ids, order, axis=1)


def text_infilling(key: jax.Array, ids: jax.Array, valid: jax.Array, candidates: jax.Array, *, mask_id: int,
                   vocab_size: int,
                   pad_id: int, mask_ratio: float = 0.3, poisson_lambda: float = 3.0, random_ratio: float = 0.1,
                   maskable_vocab: jax.Array | None = None):
  """BART's text infilling (fairseq `add_whole_word_mask` with `mask_length=span-poisson`,
  `replace_length=1`), every token a word: ceil(mask_ratio * candidates) tokens are budgeted to
  spans of Poisson(poisson_lambda) lengths (the last one trimmed to the budget) starting at
  distinct random candidate positions; each span is replaced by one [MASK] (a random token with
  `random_ratio`), a span start inside another span is deleted with it, as in the reference.
  Zero-length spans are left out (the reference inserts a [MASK] for each: e^-lambda of the
  spans, 5% at lambda 3).

  Args:
    ids: [B, L] int; valid: [B, L] bool, real tokens; candidates: [B, L] bool, the tokens that may
      be masked (real, non-special).

  Returns:
    (inputs [B, L] int, the kept tokens moved to the front and padded with `pad_id`; valid [B, L]
    bool; removed [B, L] bool, the positions of `ids` masked or deleted).
  """
  b, length = ids.shape
  budget_max = max(1, int(-(-mask_ratio * length // 1)))
  pos = jnp.arange(length)

  def one(k, x, real, cand):
    k_len, k_start, k_rand, k_tok = jax.random.split(k, 4)
    budget = jnp.ceil(mask_ratio * jnp.sum(cand)).astype(jnp.int32)
    lengths = jax.random.poisson(k_len, poisson_lambda, (budget_max,)).astype(jnp.int32)
    before = jnp.cumsum(lengths) - lengths
    lengths = jnp.where(before < budget, jnp.minimum(lengths, budget - before), 0)  # trim to the budget
    starts = jnp.argsort(jnp.where(cand, jax.random.uniform(k_start, (length,)), 2.0))[:budget_max]
    active = (lengths > 0) & cand[starts]
    reach = jnp.full((length,), -1, jnp.int32).at[starts].max(jnp.where(active, starts + lengths, -1))
    covered_before = jnp.concatenate([jnp.full((1,), -1, jnp.int32), jax.lax.cummax(reach)[:-1]])
    deleted = (covered_before > pos) & cand  # inside an earlier-starting span
    head = jnp.zeros((length,), bool).at[starts].set(active) & ~deleted
    random = jax.random.randint(k_tok, (length,), 0, vocab_size)
    if maskable_vocab is not None:
      random = jnp.where(maskable_vocab[random], random, mask_id)
    replaced = jnp.where(head, jnp.where(jax.random.uniform(k_rand, (length,)) < random_ratio, random, mask_id), x)
    keep = ~deleted & real
    where = jnp.where(keep, jnp.cumsum(keep) - 1, length)
    out = jnp.full((length,), pad_id, x.dtype).at[where].set(replaced.astype(x.dtype), mode="drop")
    return out, pos < jnp.sum(keep), head | deleted

  return jax.vmap(one)(jax.random.split(key, b), ids, valid, candidates)
