"""Non-finite steps (NaN in a batch, inf in gradients, a huge learning rate) and resuming with a changed config."""
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import digits_batch, digits_smoke_config
from sslax.data import to_global
from sslax.methods import make_method
from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding
from sslax.train.loop import NonFiniteError, train
from sslax.train.metrics import read_metrics


@jax.custom_vjp
def _inf_gradient(x):
  return x


_inf_gradient.defvjp(lambda x: (x, None), lambda _, g: (g * jnp.inf,))


@dataclasses.dataclass(frozen=True)
class _InfGradMethod:
  """Wraps a method so that its loss has a finite value and an infinite gradient."""
  inner: object

  def __getattr__(self, name):
    return getattr(self.inner, name)

  def loss(self, model, batch, method_state, key, step, target=None):
    loss, aux, ms = self.inner.loss(model, batch, method_state, key, step, target)
    return _inf_gradient(loss), aux, ms


def _run_one(method, tx, batch, devices, **step_kw):
  return _run_each(method, tx, [batch], devices, **step_kw)[0]


def _run_each(method, tx, batches, devices, **step_kw):
  """One compiled step, applied to the same initial state once per batch."""
  mesh = make_mesh({"data": -1}, devices)
  step = make_train_step(method, tx, mesh, **step_kw)
  before = jax.device_get(create_train_state(method, tx, seed=0))
  runs = []
  for batch in batches:  # the step donates its input state: a fresh copy each time
    new_state, metrics = step(jax.device_put(before, state_sharding(mesh)), to_global(batch, mesh))
    runs.append((before, jax.device_get(new_state), jax.device_get(metrics)))
  return runs


def _float_digits(nan_at=None):
  batch = digits_batch(64)
  batch = {"image": batch["image"].astype(np.float32) / 255.0, "label": batch["label"]}
  if nan_at is not None:
    batch["image"][nan_at] = np.nan
  return batch


def _assert_update_dropped(before, after, metrics):
  assert float(metrics["nonfinite"]) == 1.0
  assert int(after.step) == int(before.step) + 1 and int(after.nonfinite_steps) == 1
  for name in ("params", "batch_stats", "opt_state", "method_state", "rng"):
    for a, b in zip(jax.tree.leaves(getattr(before, name)), jax.tree.leaves(getattr(after, name))):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_nan_in_a_batch_drops_the_update_bit_identically(devices):
  method = make_method(digits_smoke_config())
  _assert_update_dropped(*_run_one(method, optax.adamw(1e-3), _float_digits(nan_at=(3, 2, 2, 0)), devices))


def test_inf_gradient_drops_the_update(devices):
  method = _InfGradMethod(make_method(digits_smoke_config()))
  before, after, metrics = _run_one(method, optax.adamw(1e-3), digits_batch(64), devices)
  assert np.isfinite(float(metrics["loss"]))
  _assert_update_dropped(before, after, metrics)


def test_a_finite_step_is_not_touched(devices):
  # the clean twin of the NaN batch above: the same compiled step
  before, after, metrics = _run_one(make_method(digits_smoke_config()), optax.adamw(1e-3), _float_digits(), devices)
  assert float(metrics["nonfinite"]) == 0.0 and int(after.nonfinite_steps) == 0
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before.params), jax.tree.leaves(after.params)))


def test_the_per_leaf_where_of_gpus_keeps_and_drops_as_the_cond_does(devices):
  """The step selects the kept state with one `cond`, except on GPUs (a per-leaf `where`).

  One where-step (its program is the large one) runs a clean batch and one with a NaN."""
  method = make_method(digits_smoke_config())
  _, by_cond, _ = _run_one(method, optax.adamw(1e-3), _float_digits(), devices, select_by_cond=True)
  (_, by_where, _), dropped = _run_each(method, optax.adamw(1e-3), [_float_digits(), _float_digits(nan_at=(3, 2, 2, 0))],
                                        devices, select_by_cond=False)
  for a, b in zip(jax.tree.leaves(by_cond), jax.tree.leaves(by_where)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  _assert_update_dropped(*dropped)


def test_all_finite_matches_a_per_leaf_numpy_check():
  """One reduction per (shape, dtype) group must decide as `np.isfinite` leaf by leaf does, also
  for finite values whose sum would overflow, bfloat16 leaves and integer leaves (ignored)."""
  from sslax.train.step import _all_finite

  check = jax.jit(_all_finite)
  rng = np.random.default_rng(0)
  base = {"w": rng.normal(size=(4, 3)).astype(np.float32), "g": rng.normal(size=(4, 3)).astype(np.float32),
          "b": np.full((3,), 3e38, np.float32), "c": np.full((3,), 3e38, np.float32),
          "h": rng.normal(size=(5,)).astype(jnp.bfloat16), "n": np.array([7, -1], np.int32),
          "s": np.float32(2.0)}
  assert bool(check(base)) and bool(check({})) and bool(check({"n": base["n"]}))
  for leaf in ("w", "g", "b", "h", "s"):
    for bad in (np.nan, np.inf, -np.inf):
      tree = {k: np.array(v, copy=True) for k, v in base.items()}
      tree[leaf].reshape(-1)[-1] = bad
      expected = all(np.isfinite(np.asarray(v, np.float32)).all() for k, v in tree.items() if k != "n")
      assert bool(check(tree)) == expected is False, (leaf, bad)


def _huge_lr_config(policy):
  return digits_smoke_config(**{"optim.name": "sgd", "optim.lr": 1e30, "train.nonfinite_policy": policy,
                                "train.log_every": 1, "train.checkpoint_every": 2, "eval.linear_probe": False})


def test_huge_learning_rate_aborts_without_committing_a_bad_checkpoint(tmp_path):
  with pytest.raises(NonFiniteError, match="non-finite"):
    train(_huge_lr_config("abort"), str(tmp_path), progress=False)
  committed = [d for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()]
  records = read_metrics(str(tmp_path))
  first_bad = min(r["step"] for r in records if r.get("nonfinite_steps", 0) > 0)
  assert all(int(d) < first_bad for d in committed)  # nothing committed from the first bad step on


def test_huge_learning_rate_is_skipped_and_counted(tmp_path):
  result = train(_huge_lr_config("skip"), str(tmp_path), progress=False)
  state = jax.device_get(result.state)
  assert int(state.nonfinite_steps) > 0 and int(state.step) == 6
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.params))
  assert read_metrics(str(tmp_path))[-1]["nonfinite_steps"] == int(state.nonfinite_steps)


def test_resuming_with_a_changed_config_names_the_field_and_both_values(tmp_path):
  config = digits_smoke_config(**{"train.checkpoint_every": 3})
  assert train(config, str(tmp_path), stop_at=3, progress=False) is None
  # a target below the checkpoint's step, and a stop at or before it, are refused before any step
  fewer = digits_smoke_config(**{"train.checkpoint_every": 3, "train.num_steps": 2})
  with pytest.raises(ValueError, match=r"train.num_steps: expected at least 3, the step of the checkpoint in .*got "
                                       r"a run of 2 steps"):
    train(fewer, str(tmp_path), progress=False)
  for stop in (2, 3):
    with pytest.raises(ValueError, match=rf"--stop_at: expected a step after 3, .*got {stop}"):
      train(config, str(tmp_path), stop_at=stop, progress=False)
  with pytest.raises(ValueError, match=r"--stop_at: expected a step >= 1, got -1"):
    train(config, str(tmp_path), stop_at=-1, progress=False)
  assert not (tmp_path / "report.json").exists()
  changed = digits_smoke_config(**{"train.checkpoint_every": 3, "train.batch_size": 32})
  with pytest.raises(ValueError, match=r"train.batch_size: checkpoint has 64, this run has 32"):
    train(changed, str(tmp_path), progress=False)
  changed = digits_smoke_config(**{"train.checkpoint_every": 3, "augment.brightness": 0.1})
  with pytest.raises(ValueError, match=r"augment.brightness: checkpoint has 0.4, this run has 0.1"):
    train(changed, str(tmp_path), progress=False)
  # allowed: a fingerprinted field that leaves the compiled step as it was (no second compile)
  allowed = digits_smoke_config(**{"train.checkpoint_every": 3, "data.on_bad_example": "skip",
                                   "train.allow_resume_changes": True, "eval.linear_probe": False})
  assert train(allowed, str(tmp_path), progress=False).report["steps"] == 6
  saved = json.loads((tmp_path / "checkpoints" / "run_fingerprint.json").read_text())
  assert saved["data.on_bad_example"] == "skip"
