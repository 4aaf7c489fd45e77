"""SpanBERT's span boundary objective: boundaries of masked runs, the SBO loss against its formula
in NumPy, a smoke run (pretrain, held-out MLM + SBO, probe) and its config errors. 1 vs 8 devices:
`tests/test_language_methods.py::test_same_loss_and_grads_on_1_and_8_devices[spanbert]`."""
import re
from math import erf

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import log_softmax, text_smoke_config
from sslax.augment.tokens import span_boundaries, span_mask_tokens
from sslax.methods import make_method
from sslax.train.loop import train


def _loop_boundaries(row):
  """(left, right, offset) of every selected position by walking each run of True."""
  n = len(row)
  left, right, offset = np.arange(n), np.arange(n), np.zeros(n, int)
  i = 0
  while i < n:
    if not row[i]:
      i += 1
      continue
    j = i
    while j < n and row[j]:
      j += 1
    left[i:j], right[i:j], offset[i:j] = max(i - 1, 0), min(j, n - 1), np.arange(j - i)
    i = j
  return left, right, offset


def test_span_boundaries_match_a_loop_over_runs():
  ids = jnp.tile(jnp.arange(5, 69), (32, 1))
  candidates = jnp.ones(ids.shape, bool).at[:, 0].set(False).at[:, -1].set(False)  # [CLS] ... [SEP]
  _, _, weights = span_mask_tokens(jax.random.PRNGKey(3), ids, candidates, vocab_size=80, mask_id=4,
                                   select_prob=0.3)
  selected = np.asarray(weights) > 0
  selected[0] = False
  selected[1, :5] = True  # a run from position 0 and one to the last position
  selected[1, -4:] = True
  left, right, offset = map(np.asarray, span_boundaries(jnp.asarray(selected)))
  for row, l, r, o in zip(selected, left, right, offset):
    np.testing.assert_array_equal(np.stack([l, r, o]), np.stack(_loop_boundaries(row)))
  masked = selected[2:]  # boundaries of [CLS]-framed rows are unmasked and in the row
  assert not np.take_along_axis(masked, left[2:], 1)[masked].any()
  assert not np.take_along_axis(masked, right[2:], 1)[masked].any()
  assert offset[selected].max() >= 4  # spans longer than one token occur


def _gelu(x):
  return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


def _layer_norm(x, scale, bias, eps=1e-12):
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * scale + bias


def test_sbo_loss_equals_numpy(tmp_path):
  config = text_smoke_config("spanbert", tmp_path / "corpus", tmp_path / "data")
  method = make_method(config)
  model = method.build_model(nnx.Rngs(0))
  b, length, dim = 4, 32, config.model.dim
  rng = np.random.default_rng(0)
  hidden = rng.normal(size=(b, length, dim)).astype(np.float32)
  targets = rng.integers(5, config.model.vocab_size, size=(b, length))
  selected = np.zeros((b, length), bool)
  selected[0, 3:6] = selected[1, 10:11] = selected[2, 20:27] = selected[3, 1:3] = selected[3, 4:9] = True
  where = np.argsort(~selected, axis=1, kind="stable")[:, :8]  # the selected positions first
  loss, metrics = method.extra_loss(model, jnp.asarray(hidden), jnp.asarray(targets),
                                    jnp.asarray(selected, jnp.float32), jnp.asarray(where))

  head = model.sbo
  p = lambda x: np.asarray(x[...], np.float64)
  nll, correct = [], []
  for i in range(b):
    left, right, offset = _loop_boundaries(selected[i])
    for j in np.flatnonzero(selected[i]):
      h = np.concatenate([hidden[i, left[j]], hidden[i, right[j]], p(head.offset_embed.embedding)[offset[j]]])
      h = _layer_norm(_gelu(h @ p(head.linear1.kernel) + p(head.linear1.bias)), p(head.norm1.scale), p(head.norm1.bias))
      h = _layer_norm(_gelu(h @ p(head.linear2.kernel) + p(head.linear2.bias)), p(head.norm2.scale), p(head.norm2.bias))
      logits = h @ p(model.tok_embed.embedding).T + p(model.sbo_bias)
      nll.append(-log_softmax(logits)[targets[i, j]])
      correct.append(np.argmax(logits) == targets[i, j])
  np.testing.assert_allclose(float(metrics["sbo_loss"]), np.mean(nll), rtol=1e-5)
  np.testing.assert_allclose(float(loss), config.method.sbo_weight * np.mean(nll), rtol=1e-5)
  assert float(metrics["sbo_accuracy"]) == pytest.approx(np.mean(correct))


def test_smoke_pretrain_then_probe(tmp_path):
  from sslax.cli import main

  config = text_smoke_config("spanbert", tmp_path / "corpus", tmp_path / "data",
                             **{"finetune.steps": 4, "finetune.batch_size": 8, "finetune.warmup_steps": 1,
                                "eval.probe_data.seq_len": 16})
  r = train(config, str(tmp_path / "run"), progress=False).report
  assert {"heldout/mlm_loss", "heldout/sbo_loss", "heldout/sbo_accuracy", "knn_top1", "linear_top1"} <= set(r)
  # 3 steps: both heads about at the uniform guess over the 200 ids (log 200 = 5.3)
  assert abs(r["heldout/sbo_loss"] - np.log(200)) < 0.5 and abs(r["heldout/mlm_loss"] - np.log(200)) < 0.5, r
  assert r["knn_top1"] > 0.6, r  # sentiment words in the sentences; chance is ~0.5
  # fine-tuning on rows of another length builds the same network (the offset table is a config field)
  cfg = tmp_path / "cfg.py"
  cfg.write_text("import ml_collections, json\ndef get_config(arg=None):\n"
                 f"  return ml_collections.ConfigDict(json.load(open({str(tmp_path / 'run' / 'config.json')!r})))\n")
  assert main(["finetune", "--config", str(cfg), "--workdir", str(tmp_path / "run"),
               "--finetune_dir", str(tmp_path / "ft")]) == 0


@pytest.mark.parametrize("override,message", [
    ({"method.masking": "bert"}, "method.masking: expected 'span' (SBO predicts masked spans), got 'bert'"),
    ({"method.sbo_weight": 0.0}, "method.sbo_weight: expected a positive weight on the SBO loss, got 0.0"),
])
def test_config_errors_name_the_field(tmp_path, override, message):
  config = text_smoke_config("spanbert", tmp_path / "corpus", tmp_path / "data", **override)
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(config)
