import jax
import numpy as np
import optax
import pytest

from helpers import digits_batch, digits_smoke_config
from sslax.data import to_global
from sslax.methods import make_method
from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding


def _one_step(mesh, config, batch, lr=1.0):
  method = make_method(config)
  tx = optax.sgd(lr)  # params' change is exactly -lr * grads: compares gradients through the real step
  state = jax.device_put(create_train_state(method, tx, seed=0), state_sharding(mesh))
  before = jax.device_get(state.params)
  step = make_train_step(method, tx, mesh)
  new_state, metrics = step(state, to_global(batch, mesh))
  grads = jax.tree.map(lambda a, b: (a - b) / lr, before, jax.device_get(new_state.params))
  return new_state, metrics, grads


def test_same_global_batch_same_loss_and_grads_on_1_and_8_devices(devices):
  config = digits_smoke_config()
  batch = digits_batch(64)
  s1, m1, g1 = _one_step(make_mesh({"data": 1}, devices[:1]), config, batch)
  s8, m8, g8 = _one_step(make_mesh({"data": -1}, devices), config, batch)
  np.testing.assert_allclose(float(m1["loss"]), float(m8["loss"]), rtol=1e-5)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g8)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(jax.device_get(s1.batch_stats)), jax.tree.leaves(jax.device_get(s8.batch_stats))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)
  assert int(s1.step) == int(s8.step) == 1


def test_step_is_deterministic_and_state_stays_replicated(devices):
  config = digits_smoke_config()
  mesh = make_mesh({"data": -1}, devices)
  batch = digits_batch(64)
  a, ma, _ = _one_step(mesh, config, batch)
  b, mb, _ = _one_step(mesh, config, batch)
  assert float(ma["loss"]) == float(mb["loss"])
  for leaf in jax.tree.leaves(a):
    assert leaf.sharding.is_fully_replicated
    assert len(leaf.sharding.device_set) == 8


def test_mesh_from_config(devices):
  assert make_mesh({"data": -1}, devices).shape == {"data": 8}
  assert make_mesh({"data": 2, "model": -1}, devices).shape == {"data": 2, "model": 4}
  with pytest.raises(ValueError, match="mesh: expected axis sizes"):
    make_mesh({"data": 3}, devices)
  with pytest.raises(ValueError, match="mesh: expected at most one axis of size -1"):
    make_mesh({"data": -1, "model": -1}, devices)
