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
from sslax.train.state import abstract_train_state, build_optimizer, init_train_state

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


HSDP = ml_collections.ConfigDict({"rules": ((".*", "fsdp"),), "axis": "fsdp", "min_size": 0})


@pytest.mark.parametrize("axes,rules", [({"data": -1}, FSDP), ({"data": 2, "fsdp": 4}, HSDP)], ids=["fsdp", "hsdp"])
def test_fsdp_gives_the_steps_of_data_parallelism_and_keeps_its_sharding(devices, axes, rules):
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
  the bound (experiments/tolerance_mutations.py).

  hsdp: a 2 x 4 mesh, the state split over the 4 devices of its 'fsdp' axis and replicated over
  'data', the batch split over all 8 (data parallelism across groups, FSDP within each, as on a
  pod of several hosts)."""
  config = method_digits_config("simclr")
  mesh = make_mesh(axes, devices)
  method = make_method(config)
  tx = optax.chain(optax.sgd(0.1, momentum=0.9), ema_target(0.9))
  state = create_train_state(method, tx, seed=0)
  shardings = state_shardings(state, mesh, rules)
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


def _shard_bytes(sharding, shape, dtype) -> int:
  return int(np.prod(sharding.shard_shape(shape), dtype=np.int64)) * np.dtype(dtype).itemsize


@pytest.mark.parametrize("name", ["byol", "moco"])  # an EMA target in the optimizer state; a queue in method_state
def test_sharded_init_never_holds_a_whole_parameter_on_one_device(devices, name):
  """`init_train_state` under FSDP is one jit whose outputs are the shards: per device, the
  compiled init outputs the sum of its shards' bytes (and alignment), its temporaries stay below the
  largest whole leaf, and every state leaf (params, Adam moments, EMA target, queue) arrives in
  its FSDP layout with the values of the eager `create_train_state`."""
  config = method_digits_config(name)
  mesh = make_mesh({"data": -1}, devices)
  method = make_method(config)
  tx = build_optimizer(method, config, 10)
  abstract, shardings = abstract_train_state(method, tx, 0, mesh, FSDP)
  leaves = [(x, s) for x, s in zip(jax.tree.leaves(abstract), jax.tree.leaves(
      shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding)))]
  whole = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x, _ in leaves)
  per_device = sum(_shard_bytes(s, x.shape, x.dtype) for x, s in leaves)
  largest = max(int(np.prod(x.shape)) * x.dtype.itemsize for x, _ in leaves)
  assert per_device < whole / 3, (per_device, whole)  # most of the state is split 8 ways

  build = lambda: create_train_state(method, tx, 0)  # noqa: E731 - what init_train_state jits
  memory = jax.jit(build, out_shardings=shardings).lower().compile().memory_analysis()
  # the shards, and some bytes of buffer alignment and tuple bookkeeping
  assert per_device <= memory.output_size_in_bytes < 1.05 * per_device, (memory.output_size_in_bytes, per_device)
  assert memory.temp_size_in_bytes < largest, (memory.temp_size_in_bytes, largest)

  state = init_train_state(method, tx, 0, shardings)
  eager = jax.device_get(build())
  for (x, s), leaf, want in zip(leaves, jax.tree.leaves(state), jax.tree.leaves(eager)):
    assert leaf.sharding == s
    assert {sh.data.shape for sh in leaf.addressable_shards} == {s.shard_shape(x.shape)}
    np.testing.assert_allclose(np.asarray(jax.device_get(leaf)), np.asarray(want), rtol=1e-6, atol=1e-7)


def test_fsdp_step_gathers_weights_not_activations(devices):
  """With `sharding.activations` (on by default once the state is split), the FSDP step's
  collectives are those of data parallelism (the gradient all-reduce) plus one all-gather per
  weight: the gathered bytes are a small multiple of the parameters', where without the
  constraints XLA reshards activations instead (more bytes all-reduced than data parallelism)."""
  from sslax.data.pipeline import data_sharding
  from sslax.train.plan import batch_shapes, collectives

  config = method_digits_config("simclr")
  mesh = make_mesh({"data": -1}, devices)
  method = make_method(config)
  tx = build_optimizer(method, config, 10)
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=data_sharding(mesh))
           for k, v in batch_shapes(config, 64, method).items()}

  def moved(rules, constrain):
    abstract, shardings = abstract_train_state(method, tx, 0, mesh, rules)
    step = make_train_step(method, tx, mesh, shardings, constrain_activations=constrain)
    found = collectives(step.lower(abstract, batch).compile().as_text())
    return {k: v["bytes"] for k, v in found.items()}, abstract

  dp, abstract = moved(None, None)
  fsdp, _ = moved(FSDP, None)
  unconstrained, _ = moved(FSDP, False)
  param_bytes = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(abstract.params))
  assert fsdp.get("all-reduce", 0) <= dp["all-reduce"] * 1.05, (fsdp, dp)
  assert fsdp.get("all-gather", 0) <= 3 * param_bytes, (fsdp, param_bytes)
  assert unconstrained.get("all-reduce", 0) > 2 * dp["all-reduce"], (unconstrained, dp)
