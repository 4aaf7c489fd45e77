"""Language pieces: BERT / SpanBERT masking statistics, LM losses against NumPy, KV-cache generation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import log_softmax, runs
from sslax.augment.tokens import bert_mask, span_mask_tokens
from sslax.losses.language import causal_lm_loss, masked_lm_loss
from sslax.models.language import BERT, GPT, generate


def test_bert_masking_proportions_over_many_draws():
  vocab, mask_id = 50, 4
  ids = jax.random.randint(jax.random.PRNGKey(0), (64, 128), 5, vocab)
  candidates = jnp.ones_like(ids, bool).at[:, 0].set(False).at[:, -8:].set(False)  # [CLS] and padding
  inputs, targets, weights = jax.vmap(lambda k: bert_mask(k, ids, candidates, vocab_size=vocab, mask_id=mask_id))(
      jax.random.split(jax.random.PRNGKey(1), 20))
  inputs, weights, ids_np = np.asarray(inputs), np.asarray(weights), np.asarray(ids)
  sel = weights > 0
  assert abs(sel.sum() / (20 * np.asarray(candidates).sum()) - 0.15) < 0.005
  assert not sel[:, :, 0].any() and not sel[:, :, -8:].any()
  masked = (inputs == mask_id) & sel
  unchanged = (inputs == ids_np[None]) & sel
  changed = sel & ~masked & ~unchanged
  n = sel.sum()
  assert abs(masked.sum() / n - 0.8) < 0.01
  # a random replacement may draw the original token (1 in 50): unchanged is 10% + 10%/50
  assert abs(unchanged.sum() / n - (0.1 + 0.1 / vocab)) < 0.01
  assert abs(changed.sum() / n - 0.1 * (1 - 1 / vocab)) < 0.01
  assert np.array_equal(np.asarray(targets), np.broadcast_to(ids_np, targets.shape))
  assert np.array_equal(inputs[~sel], np.broadcast_to(ids_np, inputs.shape)[~sel])  # unselected untouched


def test_token_zero_is_a_real_target():
  ids = jnp.zeros((4, 64), jnp.int32)  # every token is id 0
  inputs, targets, weights = bert_mask(jax.random.PRNGKey(0), ids, jnp.ones((4, 64), bool), vocab_size=10,
                                       mask_id=3)
  assert float(weights.sum()) > 0  # selected positions of id 0 are predicted, not dropped
  logits = jax.nn.one_hot(targets, 10) * 5.0
  loss, aux = masked_lm_loss(logits, targets, weights)
  assert float(aux["accuracy"]) == 1.0 and float(aux["num_targets"]) == float(weights.sum())


def test_span_masking_covers_about_15_percent_in_spans():
  ids = jnp.full((256, 200), 7, jnp.int32)
  inputs, _, weights = span_mask_tokens(jax.random.PRNGKey(0), ids, jnp.ones_like(ids, bool), vocab_size=50,
                                        mask_id=4)
  w = np.asarray(weights) > 0
  assert 0.11 < w.mean() < 0.17
  spans = [r for row in w for r in runs(row)]
  assert 3.0 < np.mean(spans) < 6.0  # mean span 3.8 at p=0.2, longer where spans touch


def test_lm_losses_match_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
  ids = rng.integers(0, 7, size=(2, 5))
  w = (rng.random((2, 5)) > 0.5).astype(np.float32)
  loss, aux = masked_lm_loss(jnp.asarray(logits), jnp.asarray(ids), jnp.asarray(w))
  nll = -np.take_along_axis(log_softmax(logits), ids[..., None], -1)[..., 0]
  np.testing.assert_allclose(float(loss), (nll * w).sum() / w.sum(), rtol=1e-5)
  np.testing.assert_allclose(float(aux["accuracy"]), ((logits.argmax(-1) == ids) * w).sum() / w.sum(), rtol=1e-6)
  valid = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
  loss, aux = causal_lm_loss(jnp.asarray(logits), jnp.asarray(ids), jnp.asarray(valid))
  nll = -np.take_along_axis(log_softmax(logits[:, :-1]), ids[:, 1:, None], -1)[..., 0]
  pair = valid[:, :-1] & valid[:, 1:]
  np.testing.assert_allclose(float(loss), nll[pair].mean(), rtol=1e-5)
  np.testing.assert_allclose(float(aux["perplexity"]), np.exp(nll[pair].mean()), rtol=1e-5)


def test_kv_cache_generation_equals_generation_without_cache():
  model = GPT(vocab_size=31, max_len=24, dim=32, depth=2, num_heads=4, mlp_dim=64, dropout=0.0, rngs=nnx.Rngs(0))
  prompt = jax.random.randint(jax.random.PRNGKey(1), (3, 5), 0, 31)
  # greedy, and sampling with temperature and top-k (without a cache every new length recompiles)
  for kw in (dict(temperature=0.0), dict(temperature=0.7, top_k=5)):
    with_cache = generate(model, prompt, 6, jax.random.PRNGKey(2), use_cache=True, **kw)
    without = generate(model, prompt, 6, jax.random.PRNGKey(2), use_cache=False, **kw)
    np.testing.assert_array_equal(with_cache, without)
    np.testing.assert_array_equal(with_cache[:, :5], prompt)
  np.testing.assert_array_equal(generate(model, prompt, 0, jax.random.PRNGKey(2)), prompt)
  with pytest.raises(ValueError, match="num_tokens: expected an integer >= 0, got -1"):
    generate(model, prompt, -1, jax.random.PRNGKey(2))
  # a negative temperature would sample the least likely tokens: refused, as a top-k beyond the vocabulary
  with pytest.raises(ValueError, match=r"temperature: expected a finite number >= 0 \(0: greedy\), got -1.0"):
    generate(model, prompt, 3, jax.random.PRNGKey(2), temperature=-1.0)
  with pytest.raises(ValueError, match=r"top_k: expected an integer in \[0, 31\]"):
    generate(model, prompt, 3, jax.random.PRNGKey(2), top_k=32)
  # the cached logits equal the full causal pass (jitted: eager ops would each compile)
  seq = jax.random.randint(jax.random.PRNGKey(3), (2, 12), 0, 31)
  full = nnx.jit(lambda m, s: m(s)[0])(model, seq)

  @nnx.jit
  def prefix_then_one(m, s):
    logits, cache = m.decode(s[:, :7], m.init_cache(2, 12))
    return logits, m.decode(s[:, 7:8], cache)[0]

  logits, step = prefix_then_one(model, seq)
  np.testing.assert_allclose(logits, full[:, :7], atol=1e-5)
  np.testing.assert_allclose(step[:, 0], full[:, 7], atol=1e-5)


def test_bert_padding_does_not_change_real_positions():
  model = BERT(vocab_size=40, max_len=16, dim=32, depth=2, num_heads=4, mlp_dim=64, dropout=0.0, rngs=nnx.Rngs(0))
  ids = jax.random.randint(jax.random.PRNGKey(0), (1, 16), 0, 40)
  valid = jnp.arange(16)[None] < 10
  h1, _ = model(ids, valid)
  h2, _ = model(ids.at[:, 10:].set(3), valid)
  np.testing.assert_allclose(h1[:, :10], h2[:, :10], atol=1e-5)
  assert model.mlm_logits(h1).shape == (1, 16, 40)


def test_mlp_hidden_has_dropout_only_when_asked():
  """BERT, GPT-2 and wav2vec 2.0 BASE drop the attention and MLP outputs, not the MLP's hidden
  activation: with dropout only there (rate 0 elsewhere) a key changes nothing unless
  activation_dropout is set."""
  from sslax.models.transformer import EncoderLayer

  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 16))
  key = jax.random.PRNGKey(1)
  plain = EncoderLayer(16, 2, 64, pre_norm=False, dropout=0.0, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(plain(x, key=key), plain(x))
  dropped = EncoderLayer(16, 2, 64, pre_norm=False, dropout=0.0, activation_dropout=0.5, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(dropped(x), plain(x))
  assert not np.allclose(dropped(x, key=key), plain(x))


def test_tokenizers_train_save_and_load(tmp_path):
  from sslax.data.tokenize import WORDPIECE_SPECIALS, load_tokenizer, tokenizer_for_run

  texts = ["the cat sat on the mat .", "a dog sat on a log .", "the cat and the dog ."] * 20
  tok = tokenizer_for_run("wordpiece", texts, str(tmp_path), vocab_size=60)
  assert [tok.token_to_id(t) for t in WORDPIECE_SPECIALS] == [0, 1, 2, 3, 4]
  ids = tok.encode("The cat sat.").ids
  assert tok.decode(ids) == "the cat sat." and (tmp_path / "tokenizer.json").exists()
  again = tokenizer_for_run("bpe", ["other text"], str(tmp_path), vocab_size=300)  # resumed run: the saved one
  assert again.encode("The cat sat.").ids == ids
  bpe = tokenizer_for_run("bpe", texts, None, vocab_size=300)
  assert bpe.decode(bpe.encode("the cat sat on the mat .").ids) == "the cat sat on the mat ."
  (tmp_path / "vocab.txt").write_text("\n".join([*WORDPIECE_SPECIALS, "the", "cat", "##s"]))
  assert load_tokenizer(str(tmp_path / "vocab.txt")).encode("the cats").tokens == ["the", "cat", "##s"]
