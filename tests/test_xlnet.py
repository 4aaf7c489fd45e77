"""XLNet: permutation masks (a target never sees itself, non-targets never see targets, the order
is respected), the query stream reads only what the order allows, left-to-right evaluation is
causal, partial-prediction statistics, a smoke run and 1 vs 8 devices."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from helpers import assert_same_step_on_1_and_8_devices, runs, text_smoke_config
from sslax.augment.permutation import left_to_right_masks, permutation_masks, plm_targets
from sslax.data import get_source
from sslax.methods import make_method
from sslax.models.xlnet import XLNet
from sslax.train.loop import train


def test_permutation_masks_never_let_a_target_see_itself():
  b, length = 64, 32
  valid = jnp.asarray(np.arange(length)[None] < np.random.default_rng(0).integers(8, length + 1, (b, 1)))
  cand = valid.at[:, 0].set(False)
  targets = plm_targets(jax.random.PRNGKey(0), cand)
  content, query = map(np.asarray, permutation_masks(jax.random.PRNGKey(1), targets, valid))
  t, v = np.asarray(targets), np.asarray(valid)
  for i in range(b):
    q, c, ti = query[i], content[i], t[i]
    assert not q[ti, :][:, ti].diagonal().any()  # a target's query never reads itself
    assert c[np.ix_(v[i], v[i])].diagonal().all()  # the content stream does
    assert not q[:, ~v[i]].any() and not c[:, ~v[i]].any()  # padding is never read
    assert not c[np.ix_(~ti & v[i], ti)].any()  # non-targets never see a target
    assert q[np.ix_(ti, ~ti & v[i])].all()  # every target reads every non-target
    # among targets the order is a strict total order: exactly one of (a reads b), (b reads a)
    tt = q[np.ix_(ti, ti)]
    np.testing.assert_array_equal(tt | tt.T, ~np.eye(ti.sum(), dtype=bool))
    assert not (tt & tt.T).any()
  tl = np.asarray(plm_targets(jax.random.PRNGKey(2), jnp.ones((400, 128), bool).at[:, 0].set(False)))
  assert abs(tl.mean() - 1 / 6) < 0.01 and np.mean([np.mean(runs(r)) for r in tl]) < 3.5
  content, query = map(np.asarray, left_to_right_masks(valid))
  np.testing.assert_array_equal(query[0], np.tril(np.ones((length, length), bool), -1) & v[0][None, :])


def test_query_stream_reads_only_what_the_order_allows():
  model = XLNet(vocab_size=50, max_len=16, dim=32, depth=2, num_heads=4, mlp_dim=64, dropout=0.0, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(0)
  ids = jnp.asarray(rng.integers(0, 50, (2, 12)))
  valid = jnp.ones((2, 12), bool)
  targets = plm_targets(jax.random.PRNGKey(3), valid.at[:, 0].set(False), plm_probability=0.4)
  content, query = permutation_masks(jax.random.PRNGKey(4), targets, valid)
  forward = nnx.jit(lambda m, x, c, q: m.lm_logits(m(x, c, q)[1]))
  base = forward(model, ids, content, query)
  t, q = np.asarray(targets), np.asarray(query)
  for row in range(2):
    for pos in np.flatnonzero(t[row]):
      changed = forward(model, ids.at[row, pos].set((ids[row, pos] + 1) % 50), content, query)
      # the target's own prediction does not see its token; targets that read it (later in the
      # order) do, and the targets before it do not
      np.testing.assert_allclose(changed[row, pos], base[row, pos], atol=1e-5)
      before = [p for p in np.flatnonzero(t[row]) if p != pos and not q[row, p, pos]]
      np.testing.assert_allclose(changed[row, before], base[row, before], atol=1e-5)
  content, query = left_to_right_masks(valid)
  base = forward(model, ids, content, query)
  changed = forward(model, ids.at[:, 6].set((ids[:, 6] + 1) % 50), content, query)
  # left to right: position t reads < t (position 0 reads nothing and is never a target)
  np.testing.assert_allclose(changed[:, 1:7], base[:, 1:7], atol=1e-5)
  assert float(jnp.abs(changed[:, 7:] - base[:, 7:]).max()) > 1e-4


def test_smoke_pretrain_and_heldout_perplexity(tmp_path):
  config = text_smoke_config("xlnet", tmp_path / "corpus", tmp_path / "data")
  r = train(config, str(tmp_path / "run"), progress=False).report
  assert r["heldout/perplexity"] == np.exp(r["heldout/lm_loss"])
  assert r["heldout/perplexity"] < 300 * 1.5, r  # about the uniform guess over 300 ids after 3 steps


def test_same_loss_and_grads_on_1_and_8_devices(tmp_path, devices):
  config = text_smoke_config("xlnet", tmp_path / "corpus", tmp_path / "data", **{"model.dropout": 0.1})
  source = get_source(config.data, config.data.train_split)
  batch = {k: np.stack([source[i][k] for i in range(8)]) for k in ("ids", "segments", "positions")}
  m1, _, _ = assert_same_step_on_1_and_8_devices(lambda: make_method(config), batch, devices)
  assert 0.05 < float(m1["target_fraction"]) < 0.35


def test_config_errors_name_the_field(tmp_path):
  import pytest

  config = text_smoke_config("xlnet", tmp_path / "corpus", tmp_path / "data", **{"method.plm_k": 1.0})
  with pytest.raises(ValueError, match=r"method.plm_k: expected a number > 1 \(1/K of the tokens are predicted\), got 1.0"):
    make_method(config)
