import jax
import pytest

from helpers import SMOKE, digits_batch, method_digits_config
from sslax.data import to_global
from sslax.methods import make_method
from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding
from sslax.train.state import build_optimizer


def _one_step(mesh, config, batch):
  method = make_method(config)
  tx = build_optimizer(method, config, config.train.num_steps)
  state = jax.device_put(create_train_state(method, tx, seed=0), state_sharding(mesh))
  return make_train_step(method, tx, mesh)(state, to_global(batch, mesh))


# Loss, gradients and state on 1 and 8 devices: tests/test_methods.py, for every method.
def test_step_is_deterministic_and_state_stays_replicated(devices):
  # the SimCLR smoke recipe with train()'s optimizer: the program of tests/test_methods.py (a cache hit)
  config = method_digits_config("simclr", **SMOKE)
  mesh = make_mesh({"data": -1}, devices)
  batch = digits_batch(64)
  a, ma = _one_step(mesh, config, batch)
  b, mb = _one_step(mesh, config, batch)
  assert float(ma["loss"]) == float(mb["loss"])
  assert int(a.step) == int(b.step) == 1
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
