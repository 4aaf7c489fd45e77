"""Every method through the shared step: 1 vs 8 devices, its extra state, and a smoke run with a probe."""
import jax
import numpy as np
import optax
import pytest

from helpers import METHOD_NAMES, SMOKE, digits_batch, method_digits_config
from sslax.data import to_global
from sslax.methods import make_method
from sslax.optim import ema_target_params, find_ema_target
from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding
from sslax.train.loop import train
from sslax.train.metrics import read_metrics
from sslax.train.state import build_optimizer


def _one_step(mesh, config, batch):
  # train()'s own optimizer: with the SMOKE config the 8-device step is the program that the smoke
  # run of the same method compiles (a persistent-cache hit, not a second compile)
  method = make_method(config)
  tx = build_optimizer(method, config, config.train.num_steps)
  state = jax.device_put(create_train_state(method, tx, seed=0), state_sharding(mesh))
  before = jax.device_get(state)
  new_state, metrics = make_train_step(method, tx, mesh)(state, to_global(batch, mesh))
  after = jax.device_get(new_state)
  updates = jax.tree.map(lambda a, b: a - b, before.params, after.params)
  return before, after, metrics, updates


def _assert_trees_close(a, b):
  # 1e-5 relative to each leaf's scale: float32 sums in another order differ by ~1e-7 per term.
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(y).max(initial=0))))


def _adam_grads(state, config):
  # AdamW's first moment after one step from zero: (1 - b1) * grad; a parameter frozen by
  # `optim.freeze` (MAE's fixed positions) has no moment (optax.MaskedNode): its gradient reads 0
  mu = optax.tree_utils.tree_get(state.opt_state, "mu")
  masked = lambda x: isinstance(x, optax.MaskedNode)  # noqa: E731
  return jax.tree.map(lambda p, m: np.zeros_like(p) if masked(m) else m / (1 - config.optim.b1),
                      state.params, mu, is_leaf=masked)


def _assert_signal_close(a, b, grads):
  """Close where the gradient is signal: above 1e-4 of its leaf's largest and 1e-6 of the largest
  of all. Adam steps by about lr * sign(grad), so where a gradient is float noise around 0 (1e-9,
  or a whole leaf the loss does not depend on, as VICReg's last bias) the two runs may step
  opposite ways: those entries follow the noise, not the code."""
  top = max(float(np.abs(g).max(initial=0)) for g in jax.tree.leaves(grads))
  for x, y, g in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(grads), strict=True):
    g = np.abs(np.asarray(g))
    signal = g > max(1e-4 * g.max(initial=0), 1e-6 * top)
    _assert_trees_close(np.asarray(x)[signal], np.asarray(y)[signal])


def _without_ema_target(opt_state):
  return optax.tree_utils.tree_set(opt_state, target=()) if find_ema_target(opt_state) is not None else opt_state


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_same_loss_grads_and_state_on_1_and_8_devices(name, devices):
  config = method_digits_config(name, **SMOKE)
  batch = digits_batch(64)
  before1, s1, m1, u1 = _one_step(make_mesh({"data": 1}, devices[:1]), config, batch)
  before8, s8, m8, u8 = _one_step(make_mesh({"data": -1}, devices), config, batch)
  np.testing.assert_allclose(float(m1["loss"]), float(m8["loss"]), rtol=1e-5)
  assert np.isfinite(float(m1["loss"]))
  grads = _adam_grads(s8, config)
  _assert_trees_close(_adam_grads(s1, config), grads)
  _assert_signal_close(u1, u8, grads)
  _assert_trees_close(s1.batch_stats, s8.batch_stats)
  _assert_trees_close(s1.method_state, s8.method_state)
  _assert_trees_close(_without_ema_target(s1.opt_state), _without_ema_target(s8.opt_state))
  if find_ema_target(s8.opt_state) is not None:  # it moves by (1 - tau) of the step
    moved = [jax.tree.map(lambda a, b: a - b, ema_target_params(s.opt_state), ema_target_params(b.opt_state))
             for s, b in ((s1, before1), (s8, before8))]
    _assert_signal_close(*moved, grads)
  assert {"collapse/std", "collapse/std_ratio", "collapse/rank"} <= set(m1)


def test_byol_target_is_the_ema_of_the_params_through_the_step(devices):
  config = method_digits_config("byol", **SMOKE)
  tau = float(make_method(config).ema_schedule(config.train.num_steps)(0))
  assert 0 < tau < 1
  before, after, _, _ = _one_step(make_mesh({"data": -1}, devices), config, digits_batch(64))
  expected = jax.tree.map(lambda t, p: t + (1 - tau) * (p - t), ema_target_params(before.opt_state), after.params)
  _assert_trees_close(ema_target_params(after.opt_state), expected)
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), ema_target_params(after.opt_state), before.params)
  assert max(jax.tree.leaves(moved)) > 0


def test_moco_queue_takes_the_global_batch_of_keys(devices):
  config = method_digits_config("moco", **SMOKE)
  before, after, _, _ = _one_step(make_mesh({"data": -1}, devices), config, digits_batch(64))
  q0, q1 = np.asarray(before.method_state["queue"]), np.asarray(after.method_state["queue"])
  assert q1.shape == (2, 128, config.projector.out_dim)
  assert int(after.method_state["queue_ptr"]) == 64
  assert not np.allclose(q0[:, :64], q1[:, :64]) and np.array_equal(q0[:, 64:], q1[:, 64:])
  np.testing.assert_allclose(np.linalg.norm(q1, axis=-1), 1.0, rtol=1e-5)


def test_moco_stop_and_resume_is_exact_queue_included(tmp_path):
  config = method_digits_config("moco", **{"train.num_steps": 4, "train.log_every": 1, "train.checkpoint_every": 2,
                                           "eval.knn_k": 5, "eval.linear_probe": False})
  straight = train(config, str(tmp_path / "straight"), progress=False)
  assert train(config, str(tmp_path / "resumed"), stop_at=2, progress=False) is None
  resumed = train(config, str(tmp_path / "resumed"), progress=False)
  losses = lambda d: {r["step"]: r["loss"] for r in read_metrics(str(d)) if "loss" in r}
  assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
  queue = np.asarray(resumed.state.method_state["queue"])
  np.testing.assert_array_equal(queue, np.asarray(straight.state.method_state["queue"]))
  assert np.abs(queue).sum() > 0 and int(resumed.state.method_state["queue_ptr"]) == 4 * 64 % 128
  for a, b in zip(jax.tree.leaves(jax.device_get(straight.state)), jax.tree.leaves(jax.device_get(resumed.state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_moco_v3_has_no_queue_and_a_predictor(devices):
  config = method_digits_config("moco", **SMOKE, **{"method.version": "v3"})
  before, after, metrics, _ = _one_step(make_mesh({"data": -1}, devices), config, digits_batch(64))
  assert after.method_state == {} and "predictor" in after.params and np.isfinite(float(metrics["loss"]))


def test_dino_center_follows_the_teacher(devices):
  config = method_digits_config("dino", **SMOKE)
  before, after, metrics, _ = _one_step(make_mesh({"data": -1}, devices), config, digits_batch(64))
  assert float(np.abs(before.method_state["center"]).max()) == 0.0
  assert float(np.abs(after.method_state["center"]).max()) > 0.0
  np.testing.assert_allclose(float(metrics["teacher_temperature"]), config.method.warmup_teacher_temperature,
                             rtol=1e-6)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_smoke_pretrain_then_probe(name, tmp_path):
  config = method_digits_config(name, **SMOKE)
  result = train(config, str(tmp_path), progress=False)
  # 4 steps do not beat random init yet (both probe at ~0.72 on the held-out digits), but the
  # features of the trained encoder are far above chance (0.1 for 10 digits): collapsed features,
  # or features out of line with their labels, probe near 0.1. A ViT's pooled tokens share a large
  # common direction at init, so its cosine kNN sits lower (0.26-0.42 at 4 steps, 0.1 is chance)
  # while its linear probe, which standardizes the features, does not
  knn_floor = 0.2 if config.model.name.startswith("vit") else 0.5
  assert result.report["linear_top1"] > 0.5 and result.report["knn_top1"] > knn_floor, result.report
  if name in ("mae", "simmim"):  # the probe of every block, and the drawn reconstructions
    depth = config.model.depth
    assert {f"layer/block{i}/linear_top1" for i in range(1, depth + 1)} | {"layer/final/linear_top1"} <= set(result.report)
    assert result.report["layer/best_linear_top1"] > 0.5 and (tmp_path / "reconstructions.png").exists()
  if name == "pixelcnn":  # bits/dim beside its baselines on the same held-out pixels, and samples
    r = result.report
    assert r["heldout/uniform_bits_per_dim"] == 8.0 and r["heldout/marginal_bits_per_dim"] < 8.0
    assert 0 < r["heldout/bits_per_dim"] < 9.0 and (tmp_path / "samples.png").exists(), r
  if name == "swav":  # the clusters' NMI with the digits, and the probe of every stage
    r = result.report
    assert 0 <= r["clusters/nmi"] <= 1 and r["clusters/used"] >= 2, r
    assert {f"layer/stage{i}/linear_top1" for i in range(1, 5)} <= set(r), r
  records = read_metrics(str(tmp_path))
  assert all(np.isfinite(r["loss"]) for r in records)
  assert not any(r.get("collapse/alarm") for r in records)  # a healthy run raises no alarm


@pytest.mark.parametrize("override,message", [
    ({"method.queue_size": 100}, "method.queue_size: expected a positive multiple of train.batch_size (64), got 100"),
    ({"method.version": "v4"}, "method.version: expected 'v2' or 'v3', got 'v4'"),
    ({"method.base_tau": 1.5}, "method.base_tau: expected a number in [0, 1], got 1.5"),
])
def test_moco_config_errors_name_the_key(override, message):
  with pytest.raises(ValueError, match=re_escape(message)):
    make_method(method_digits_config("moco", **override))


def test_dino_and_view2_config_errors_name_the_key():
  with pytest.raises(ValueError, match=re_escape("method.student_temperature: expected a positive number, got -0.1")):
    make_method(method_digits_config("dino", **{"method.student_temperature": -0.1}))
  from sslax.config import validate_config

  config = method_digits_config("byol")
  config.unlock()
  config.augment_view2.solarize_prob = 2.0
  with pytest.raises(ValueError, match=re_escape("augment_view2.solarize_prob: expected a probability in [0, 1], got 2.0")):
    validate_config(config)


def re_escape(text):
  import re

  return re.escape(text)


@pytest.mark.parametrize("name", ["simclr", "dino"])
def test_a_vit_backbone_works_for_the_methods(name, devices):
  config = method_digits_config(name, **{"model.name": "vit_tiny"})
  config.unlock()
  config.model.depth, config.model.image_size, config.model.patch_size = 1, 8, 4
  config.lock()
  # one 8-device step (1 vs 8 devices is tested above for every method; a ViT has no batch norm)
  _, after, metrics, _ = _one_step(make_mesh({"data": -1}, devices), config, digits_batch(32))
  assert np.isfinite(float(metrics["loss"])) and "cls_token" in after.params["encoder"]
  cls_grad = jax.tree.leaves(_adam_grads(after, config)["encoder"]["cls_token"])[0]
  assert float(np.abs(cls_grad).max()) > 0
