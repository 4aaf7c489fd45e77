"""FSDP: parameters and optimizer state split over the data axis by `sharding.rules`."""
import jax
import ml_collections
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from helpers import assert_close_in_norm, digits_batch, leaf_names, method_digits_config
from sslax.data import to_global
from sslax.methods import make_method
from sslax.optim import ema_target
from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding
from sslax.train.mesh import leaf_spec, state_shardings

FSDP = ml_collections.ConfigDict({"rules": ((".*", "fsdp"),), "axis": "data", "min_size": 0})


def test_rules_pick_a_divisible_dimension_first_match_wins_and_name_bad_specs(devices):
  mesh = make_mesh({"data": -1}, devices)
  assert leaf_spec("params/conv/kernel", (3, 3, 16, 32), mesh, ((".*", "fsdp"),)) == P(None, None, None, "data")
  assert leaf_spec("params/head/bias", (10,), mesh, ((".*", "fsdp"),)) == P()  # 10 is not a multiple of 8
  assert leaf_spec("params/head/bias", (16,), mesh, ((".*", "fsdp"),), min_size=64) == P()
  rules = (("bias", "replicated"), ("kernel", ("data", None)), (".*", "fsdp"))
  assert leaf_spec("params/x/bias", (64,), mesh, rules) == P()
  assert leaf_spec("opt_state/0/mu/x/kernel", (64, 3), mesh, rules) == P("data", None)
  assert leaf_spec("rng", (2,), mesh, rules) == P()
  with pytest.raises(ValueError, match=r"sharding.rules: expected a spec of 2 entries for params/x/kernel"):
    leaf_spec("params/x/kernel", (64, 3), mesh, (("kernel", ("data",)),))
  with pytest.raises(ValueError, match=r"sharding.rules: expected mesh axes .* dividing params/x/kernel"):
    leaf_spec("params/x/kernel", (60, 3), mesh, (("kernel", ("data", None)),))


def _float_leaves(state) -> dict:
  tree = {"params": state.params, "opt_state": state.opt_state, "batch_stats": state.batch_stats}
  return {name: np.asarray(x) for name, x in zip(leaf_names(tree), jax.tree.leaves(tree))
          if np.issubdtype(np.asarray(x).dtype, np.floating)}


def test_fsdp_gives_the_steps_of_data_parallelism_and_keeps_its_sharding(devices):
  """Each of three steps under FSDP computes what data parallelism computes from the same state:
  the same loss, and the same change of every parameter, momentum, EMA-target and batch-norm leaf.

  Momentum SGD moves the parameters by lr * gradient sums, so the two layouts agree to float32
  rounding (Adam would blow the ~1e-9 noise gradients of pre-batch-norm biases up to lr); the EMA
  target in the optimizer state, as BYOL and DINO have, is split with the rest. Three steps, so
  that the second and third read the split momentum and target that the one before wrote, each
  compared from the state FSDP handed back: trajectories compared from the start diverge as
  batch-norm training amplifies rounding (measured: 2e-5 of the movement after 3 steps in this
  config, 2e-3 in the quickstart's), the step's own arithmetic does not. Measured per step, the
  difference (reductions in another order) uses at most 7% of the bound on the AVX-512 and the
  AVX2 code path, while a gradient of one device's shard instead of the global batch (a dropped
  all-reduce) is off by 6.7 of its norm and a momentum read one shard out of place uses 2e4 times
  the bound (experiments/tolerance_mutations.py)."""
  config = method_digits_config("simclr")
  mesh = make_mesh({"data": -1}, devices)
  method = make_method(config)
  tx = optax.chain(optax.sgd(0.1, momentum=0.9), ema_target(0.9))
  state = create_train_state(method, tx, seed=0)
  shardings = state_shardings(state, mesh, FSDP)
  expected = [s.spec for s in jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding))]
  fsdp_step = make_train_step(method, tx, mesh, shardings)
  dp_step = make_train_step(method, tx, mesh)
  state = jax.device_put(state, shardings)
  for i in range(3):
    batch = to_global(digits_batch(64, seed=i), mesh)
    before = jax.device_get(state)
    dp_state, dp_metrics = dp_step(jax.device_put(before, state_sharding(mesh)), batch)
    state, metrics = fsdp_step(state, batch)
    assert [leaf.sharding.spec for leaf in jax.tree.leaves(state)] == expected  # laid out as it came in
    np.testing.assert_allclose(float(metrics["loss"]), float(dp_metrics["loss"]), rtol=1e-5)  # a mean of 128 terms of ~5
    old, new, want = _float_leaves(before), _float_leaves(jax.device_get(state)), _float_leaves(jax.device_get(dp_state))
    # to 1e-4 of what the step changed, and to 2 ulps of the values themselves: an EMA target of
    # a batch-norm scale (~1) moves by 1e-4 of it a step, so its stored rounding is a large part
    assert_close_in_norm(new, want, 1e-4, f"step {i + 1}: ", scale={k: v - old[k] for k, v in want.items()}, ulps=2)
  sharded = [s for s in expected if s != P()]
  assert len(sharded) > len(expected) // 3, "most parameter and optimizer leaves should be split"
