"""train.compute_dtype='bfloat16': bf16 compute, float32 state, losses within tolerance of float32."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import SMOKE, digits_batch, digits_smoke_config, method_digits_config, text_smoke_config
from sslax.data import to_global
from sslax.data.sources import get_source
from sslax.methods import make_method
from sslax.train import build_optimizer, create_train_state, make_mesh, make_train_step, state_sharding


def _steps(config, batch, mesh, n=3):
  method = make_method(config)
  # the recipe's optimizer when it is the SimCLR smoke recipe: its float32 step is then the
  # program of tests/test_methods.py (a persistent-cache hit)
  tx = build_optimizer(method, config, config.train.num_steps) if config.method.name == "simclr" else optax.adam(1e-3)
  state = jax.device_put(create_train_state(method, tx, seed=0), state_sharding(mesh))
  step = make_train_step(method, tx, mesh)
  losses = []
  for _ in range(n):
    state, metrics = step(state, to_global(batch, mesh))
    losses.append(float(metrics["loss"]))
  return state, losses, step.lower(state, to_global(batch, mesh)).as_text()


def _check(config, batch, devices, rtol):
  mesh = make_mesh({"data": -1}, devices)
  state32, loss32, _ = _steps(config, batch, mesh)
  config.unlock()
  config.train.compute_dtype = "bfloat16"
  config.lock()
  state16, loss16, hlo = _steps(config, batch, mesh)
  np.testing.assert_allclose(loss16, loss32, rtol=rtol)
  assert all(np.isfinite(loss16))
  # params, optimizer state and batch statistics stay float32; the matmuls run in bf16
  for leaf in jax.tree.leaves((state16.params, state16.opt_state, state16.batch_stats)):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32, leaf.dtype
  assert "bf16" in hlo


def test_simclr_bf16_loss_agrees_with_float32(devices):
  _check(method_digits_config("simclr", **SMOKE), digits_batch(64), devices, rtol=2e-2)


def test_bert_bf16_loss_agrees_with_float32(devices, tmp_path_factory):
  name = "bert"  # GPT shares every layer type with BERT
  root = tmp_path_factory.mktemp("text")
  config = text_smoke_config(name, root / "corpus", root / "data", **{"model.dropout": 0.0})
  source = get_source(config.data, config.data.train_split)
  rows = [source[i] for i in range(8)]
  batch = {k: np.stack([r[k] for r in rows]) for k in ("ids", "segments", "positions")}
  _check(config, batch, devices, rtol=2e-2)


def test_bad_compute_dtype_is_named():
  from sslax.config import validate_config

  config = digits_smoke_config()
  config.train.compute_dtype = "float16"
  with pytest.raises(ValueError, match="train.compute_dtype: expected 'float32' or 'bfloat16', got 'float16'"):
    validate_config(config)
