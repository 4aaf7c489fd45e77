"""word2vec: the negative-sampling loss against NumPy, windows / subsampling / noise as word2vec.c
draws them, the word-vector benchmarks against hand-checked cases, 1 vs 8 devices, and a smoke run."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import ROOT, set_overrides

from sslax.losses.word2vec import negative_sampling_loss
from sslax.methods.word2vec import context_windows, draw_noise, keep_probability, noise_cdf


def _log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


def test_negative_sampling_loss_matches_numpy():
  rng = np.random.default_rng(0)
  v, u, un = rng.normal(size=(3, 4, 8)), rng.normal(size=(3, 4, 8)), rng.normal(size=(3, 4, 5, 8))
  ok, w = rng.random((3, 4, 5)) > 0.2, (rng.random((3, 4)) > 0.3).astype(np.float32)
  total, n = negative_sampling_loss(*(jnp.asarray(a, jnp.float32) for a in (v, u, un)), jnp.asarray(ok),
                                    jnp.asarray(w))
  ref = 0.0
  for i in range(3):
    for j in range(4):
      term = -_log_sigmoid(v[i, j] @ u[i, j]) - sum(_log_sigmoid(-(v[i, j] @ un[i, j, k])) for k in range(5)
                                                   if ok[i, j, k])
      ref += w[i, j] * term
  np.testing.assert_allclose(float(total), ref, rtol=1e-5)
  assert float(n) == w.sum()


def test_windows_subsampling_and_noise_follow_word2vec_c():
  counts = np.array([0, 0, 0, 5000, 800, 40, 3, 1], np.float64)
  t, total = 1e-3, counts.sum()
  # word2vec.c: ran = (sqrt(cn / (sample * train_words)) + 1) * (sample * train_words) / cn
  ref = np.where(counts > 0, np.minimum((np.sqrt(counts / (t * total)) + 1) * t * total / np.maximum(counts, 1), 1), 0)
  np.testing.assert_allclose(np.asarray(keep_probability(jnp.asarray(counts), t)), ref, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(keep_probability(jnp.asarray(counts), 0.0)), counts > 0)

  # noise: unigram^0.75 over the words, never a special (count 0)
  draws = np.asarray(draw_noise(jax.random.key(0), noise_cdf(jnp.asarray(counts)), (200_000,)))
  p = counts ** 0.75 / (counts ** 0.75).sum()
  np.testing.assert_allclose(np.bincount(draws, minlength=8) / draws.size, p, atol=4e-3)

  # windows: discarded words removed first, a shrunk window per centre, never across a sentence
  rng = np.random.default_rng(1)
  ids = rng.integers(3, 50, (4, 20)).astype(np.int32)
  keep = rng.random((4, 20)) > 0.3
  sentence = np.cumsum(rng.random((4, 20)) < 0.15, axis=1)
  key, window = jax.random.key(3), 3
  centres, contexts, valid = (np.asarray(a) for a in context_windows(key, jnp.asarray(ids), jnp.asarray(keep),
                                                                      jnp.asarray(sentence), window))
  reach = window - np.asarray(jax.random.randint(key, (4, 20), 0, window))
  offsets = [o for o in range(-window, window + 1) if o != 0]
  for r in range(4):
    kept_ids, kept_sent = ids[r][keep[r]], sentence[r][keep[r]]
    n = len(kept_ids)
    np.testing.assert_array_equal(centres[r, :n], kept_ids)
    assert not valid[r, n:].any()
    for i in range(n):
      for j, o in enumerate(offsets):
        expect = 0 <= i + o < n and abs(o) <= reach[r, i] and kept_sent[i + o] == kept_sent[i]
        assert valid[r, i, j] == expect, (r, i, o)
        if expect:
          assert contexts[r, i, j] == kept_ids[i + o]


def test_word_vector_metrics_by_hand(tmp_path):
  from sslax.eval.word_vectors import analogy_accuracy, read_analogies, similarity_correlation

  words = ["man", "woman", "king", "queen", "apple", "paris", "france"]
  v = np.zeros((7, 4))
  v[0], v[1] = [1, 0, 0, 0], [1, 1, 0, 0]  # gender on axis 1
  v[2], v[3] = [1, 0, 1, 0], [1, 1, 1, 0]
  v[4], v[5], v[6] = [0, 0, 0, 1], [0, 0.2, 0.1, 1], [0.3, 0, 0, 1]
  path = tmp_path / "q.txt"
  path.write_text(": capital-world\nParis France Paris France\n: gram1-x\nman woman king queen\n"
                  "man woman king unicorn\n")
  questions = read_analogies(str(path))
  out = analogy_accuracy(v, words, questions)
  # man:woman::king:queen is right; paris:france::paris:? excludes paris, france -> wrong; unicorn is
  # out of the vocabulary: wrong in accuracy, left out of covered_accuracy
  assert out["accuracy"] == pytest.approx(1 / 3) and out["coverage"] == pytest.approx(2 / 3)
  assert out["covered_accuracy"] == 0.5 and out["syntactic"] == 0.5 and out["semantic"] == 0.0
  # restricted to the first 3 words, queen is outside: nothing covered
  assert analogy_accuracy(v, words, questions, restrict=3)["coverage"] == 0.0
  sim = similarity_correlation(v, words, [("man", "woman", 9.0), ("man", "apple", 1.0), ("king", "queen", 8.0),
                                          ("man", "dragon", 5.0)])
  # cosines 0.707, 0, 0.816 against 9, 1, 8: ranks (2, 1, 3) vs (3, 1, 2) -> rho = 0.5
  assert sim["spearman"] == pytest.approx(0.5) and sim["coverage"] == 0.75


def _corpus(folder):
  """Sentences where each noun comes with its own verb: enough structure for a 3-step smoke run."""
  rng = np.random.default_rng(0)
  os.makedirs(folder, exist_ok=True)
  nouns, verbs = ["cat", "dog", "king", "queen", "man", "woman"], ["sleeps", "barks", "rules", "reigns", "walks",
                                                                    "talks"]
  lines = []
  for _ in range(300):
    i = int(rng.integers(6))
    lines.append(f"the {nouns[i]} {verbs[i]} and the {nouns[(i + 1) % 6]} {verbs[(i + 1) % 6]} .")
  corpus = os.path.join(folder, "corpus.tsv")  # a `text` column, as experiments/word2vec_corpus.py writes
  with open(corpus, "w") as f:
    f.write("text\n" + "\n".join(lines) + "\n")
  with open(os.path.join(folder, "q.txt"), "w") as f:
    f.write(": family\nman woman king queen\n: gram1\ncat dog king queen\n")
  with open(os.path.join(folder, "sim.txt"), "w") as f:
    f.write("cat dog 8\nking queen 9\nman sleeps 1\ndog unicorn 5\n")
  return corpus


def _smoke_config(tmp_path, **overrides):
  from sslax.config import load_config

  folder = tmp_path / "text"
  corpus = _corpus(folder)
  config = load_config(os.path.join(ROOT, "experiments", "word2vec_text.py:smoke"))
  config.unlock()
  config.data.paths = {"train": corpus, "test": corpus}
  config.data.data_dir = str(tmp_path / "tfds")
  config.eval.word_eval = {"analogy": str(folder / "q.txt"), "analogy_vocab": 100,
                           "similarity": {"toy": str(folder / "sim.txt")}}
  set_overrides(config, overrides)
  config.lock()
  return config


def test_smoke_pretrain_then_word_vectors(tmp_path):
  from sslax.train.loop import train

  report = train(_smoke_config(tmp_path), str(tmp_path / "run"), progress=False).report
  assert report["steps"] == 3
  assert 0 <= report["analogy/accuracy"] <= 1 and report["analogy/coverage"] == 1.0
  assert report["similarity/toy_coverage"] == 0.75 and -1 <= report["similarity/toy"] <= 1


def test_same_loss_and_grads_on_1_and_8_devices_with_the_tables_split(tmp_path):
  """CBOW (the smoke run is skip-gram) replicated on 1 device against FSDP-split tables on 8."""
  from sslax.data import get_source, to_global
  from sslax.methods import make_method
  from sslax.optim import make_optimizer
  from sslax.eval import EvalData
  from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding
  from sslax.train.mesh import state_shardings

  results = []
  for n, rules in ((1, ()), (8, ((".*", "fsdp"),))):
    config = _smoke_config(tmp_path, **{"method.architecture": "cbow", "sharding.rules": rules})
    method = make_method(config)
    source = get_source(config.data, "train")
    fn = method.inputs.transform()
    batch = {k: np.stack([fn(source[i])[k] for i in range(8)]) for k in method.inputs.keys}
    tx = make_optimizer(config.optim, 10, 8)
    mesh = make_mesh({"data": n})
    state = method.refresh(create_train_state(method, tx, 0), EvalData(train=source), mesh, 0)
    shardings = state_shardings(state, mesh, config.sharding) if rules else state_sharding(mesh)
    state = jax.device_put(state, shardings)
    if rules:  # the vocabulary axis of both tables split 8 ways
      assert state.params["input"]["embedding"].sharding.spec[0] is not None
    step = make_train_step(method, tx, mesh, shardings if rules else None)
    state, metrics = step(state, to_global(batch, mesh))
    results.append((jax.device_get(metrics), jax.device_get(state.params)))
  (m1, p1), (m8, p8) = results
  assert m1["positives"] > 0 and np.isfinite(m1["loss"])
  np.testing.assert_allclose(m1["loss"], m8["loss"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


def test_bad_config_fails_before_compiling(tmp_path):
  from sslax.methods import make_method

  with pytest.raises(ValueError, match=r"method.architecture: expected one of \['skipgram', 'cbow'\], got 'glove'"):
    make_method(_smoke_config(tmp_path, **{"method.architecture": "glove"}))
  with pytest.raises(ValueError, match=r"method.sample: expected a number in \[0, 1\)"):
    make_method(_smoke_config(tmp_path, **{"method.sample": 1.5}))
  with pytest.raises(ValueError, match=r"data.tokenizer: expected 'word'"):
    make_method(_smoke_config(tmp_path, **{"data.tokenizer": "bpe"}))


def test_word_tokenizer_numbers_words_by_frequency_after_the_specials():
  from sslax.data.tokenize import WORD_SPECIALS, train_tokenizer

  tok = train_tokenizer(["The cat sat on the mat.", "the dog, the CAT!"] * 3, kind="word", vocab_size=100,
                        min_frequency=6)
  assert [tok.token_to_id(t) for t in WORD_SPECIALS] == [0, 1, 2]
  assert tok.token_to_id("the") == 3 and tok.token_to_id("cat") == 4  # 12 and 6 times; the rest fewer than 6
  assert tok.encode("The cat flew.").tokens == ["the", "cat", "<unk>", "<unk>"]
