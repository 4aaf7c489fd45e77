"""T5 span corruption drawn on device: the reference's lengths, exact noise counts, sentinel
bookkeeping (input and target give back the row), and span statistics over many draws."""
import jax
import jax.numpy as jnp
import numpy as np

from helpers import runs
from sslax.augment.denoising import random_spans_noise_mask, t5_lengths, t5_span_corruption


def test_t5_lengths_are_the_reference_s():
  # run_t5_mlm_flax.py's compute_input_and_target_lengths(512, 0.15, 3.0): 568 raw tokens, 114 targets
  assert t5_lengths(512) == (568, 114)
  assert t5_lengths(128) == (141, 29)  # 21 noise tokens in 7 spans: 141 - 21 + 7 + EOS = 128 inputs; 142 gives 129


def test_span_corruption_keeps_every_token_once_and_counts_exactly():
  vocab, eos, pad = 100, 1, 0
  n, n_in = t5_lengths(64)[0], 64
  ids = jnp.asarray(np.random.default_rng(0).integers(2, 80, (16, n)))
  inputs, targets, noise = jax.jit(lambda k, x: t5_span_corruption(k, x, vocab_size=vocab, eos_id=eos, pad_id=pad))(
      jax.random.PRNGKey(0), ids)
  noise_count = int(round(n * 0.15))
  spans = int(round(noise_count / 3))
  assert inputs.shape == (16, n_in) and targets.shape[1] == noise_count + spans + 1
  for row, x, y, m in zip(np.asarray(ids), np.asarray(inputs), np.asarray(targets), np.asarray(noise)):
    assert m.sum() == noise_count and len(runs(m)) == spans and not m[0]
    assert x[-1] == eos and y[-1] == eos
    sentinels = list(range(vocab - 1, vocab - 1 - spans, -1))
    assert [t for t in x if t >= 80] == sentinels and [t for t in y if t >= 80] == sentinels
    # input: kept spans separated by sentinels; target: each sentinel then the span it replaced
    kept = np.split(x[:-1], np.flatnonzero(x[:-1] >= 80))
    dropped = np.split(y[:-1], np.flatnonzero(y[:-1] >= 80))[1:]
    rebuilt = np.concatenate([kept[0]] + [np.concatenate([d[1:], k[1:]]) for d, k in zip(dropped, kept[1:])])
    np.testing.assert_array_equal(rebuilt, row)


def test_noise_span_lengths_over_many_draws():
  masks = np.asarray(jax.vmap(lambda k: random_spans_noise_mask(k, 568))(jax.random.split(jax.random.PRNGKey(1), 400)))
  lengths = np.concatenate([runs(m) for m in masks])
  assert (masks.sum(1) == 85).all() and len(lengths) == 400 * 28  # spans never touch: 28 per row
  assert abs(lengths.mean() - 85 / 28) < 1e-9
  # a uniformly random partition of 85 into 28 parts: P(length 1) = C(83, 26) / C(84, 27) = 27 / 84
  assert abs(np.mean(lengths == 1) - 27 / 84) < 0.02
  first = masks.argmax(1)
  assert first.min() >= 1 and len(set(first.tolist())) > 20  # the first span starts anywhere but 0


def _fairseq_infilling(rng, n, p=0.3, lam=3.0):
  """fairseq `DenoisingDataset.add_whole_word_mask` (replace_length 1, span-poisson, every token a
  word start but the first and last, zero-length spans dropped as ours) in NumPy:
  (tokens removed, [MASK]s left, output length)."""
  is_word_start = np.ones(n, np.int64)
  is_word_start[0] = is_word_start[-1] = 0
  num_to_mask = int(np.ceil(is_word_start.sum() * p))
  lengths = rng.poisson(lam, num_to_mask)
  while lengths.sum() < num_to_mask:
    lengths = np.concatenate([lengths, rng.poisson(lam, num_to_mask)])
  cum = np.cumsum(lengths)
  i = int(np.argmax(cum >= num_to_mask))
  lengths[i] = num_to_mask - (cum[i - 1] if i else 0)
  lengths = lengths[:i + 1]
  lengths = lengths[lengths > 0]
  starts = np.flatnonzero(is_word_start)
  indices = starts[rng.permutation(len(starts))[:len(lengths)]]
  to_keep, replaced = np.ones(n, bool), np.zeros(n, bool)
  replaced[indices] = True
  is_word_start[-1] = 255
  lengths = lengths - 1
  while indices.size:
    lengths = lengths - is_word_start[indices + 1]
    uncompleted = lengths >= 0
    indices, lengths = indices[uncompleted] + 1, lengths[uncompleted]
    to_keep[indices] = False
  return int((replaced | ~to_keep).sum()), int((replaced & to_keep).sum()), int(to_keep.sum())


def test_text_infilling_matches_fairseq_statistics():
  from sslax.augment.denoising import text_infilling

  b, n, mask_id = 2000, 64, 4
  ids = jnp.tile(jnp.arange(10, 10 + n), (b, 1))
  cand = jnp.ones((b, n), bool).at[:, 0].set(False).at[:, -1].set(False)
  out, valid, removed = map(np.asarray, jax.jit(lambda k: text_infilling(
      k, ids, jnp.ones((b, n), bool), cand, mask_id=mask_id, vocab_size=100, pad_id=0, random_ratio=0.0))(
      jax.random.PRNGKey(0)))
  ours = np.stack([removed.sum(1), (out == mask_id).sum(1), valid.sum(1)], 1)
  rng = np.random.default_rng(0)
  ref = np.array([_fairseq_infilling(rng, n) for _ in range(b)])
  for j, what in enumerate(("removed", "masks", "length")):
    sigma = np.sqrt(ours[:, j].var() / b + ref[:, j].var() / b)
    assert abs(ours[:, j].mean() - ref[:, j].mean()) < 4 * sigma + 1e-9, (what, ours[:, j].mean(), ref[:, j].mean())
  assert 0.25 < ours[:, 0].mean() / 62 < 0.31  # the 30% budget, less the overlaps of spans
  for row, x, v, r in zip(np.asarray(ids)[:50], out[:50], valid[:50], removed[:50]):
    # kept tokens in order, each span collapsed into one [MASK] (two touching spans keep two, as fairseq)
    want = [int(t) for p, t in enumerate(row) if not r[p]]
    got = [int(t) for t in x[v] if t != mask_id]
    assert got == want and x[v][0] == row[0] and x[v][-1] == row[-1]
    assert len(runs(r)) <= (x[v] == mask_id).sum() <= r.sum() and (x[~v] == 0).all()
    assert len(x[v]) == n - r.sum() + (x[v] == mask_id).sum()


def test_permute_sentences_keeps_each_sentence_whole():
  from sslax.augment.denoising import permute_sentences

  eos = 3
  row = np.array([10, 11, eos, 20, 21, 22, eos, 30, eos, 40, 41, 0, 0])
  valid = np.arange(13) < 11
  outs = np.asarray(jax.vmap(lambda k: permute_sentences(k, jnp.asarray(row)[None], jnp.asarray(valid)[None],
                                                          eos_id=eos)[0])(jax.random.split(jax.random.PRNGKey(0), 64)))
  import itertools

  sentences = [(10, 11, eos), (20, 21, 22, eos), (30, eos), (40, 41)]  # the cut last piece counts as one
  concatenations = {sum(order, ()) for order in itertools.permutations(sentences)}
  orders = set()
  for x in outs:
    assert tuple(int(t) for t in x[:11]) in concatenations and (x[11:] == 0).all()
    orders.add(tuple(x))
  assert len(orders) > 12  # 4 sentences: 24 orders
