"""What the float tolerances of tests/test_conv.py and tests/test_fsdp.py allow, and what they catch.

For each claim "A computes the same arithmetic as B" the tests bound ||A - B|| / ||B|| per tensor.
This script measures that ratio three ways, on whatever CPU code path runs it:

1. float32 rounding: each convolution (XLA's and im2col) against the same convolution in float64,
   and one SimCLR step with im2col against XLA's, FSDP against data parallelism;
2. drift: FSDP against data parallelism after 3 momentum-SGD steps (the parameters' movement);
3. bugs: the same comparisons with the code broken once each way (im2col's weight gradient with
   its taps in the wrong order or its padding off by one, its input gradient with an unflipped
   kernel; a gradient of one device's shard instead of the global batch, as a dropped all-reduce
   gives; a momentum trace read back one shard out of place).

A tolerance means something when (1) and (2) sit well under it and every line of (3) far above.

  python experiments/tolerance_mutations.py
  XLA_FLAGS=--xla_cpu_max_isa=AVX2 python experiments/tolerance_mutations.py   # another code path

It sets 8 host devices and the tests' XLA optimization level before JAX starts.
"""
from __future__ import annotations

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax import lax  # noqa: E402

import sslax.models.conv as conv_mod  # noqa: E402
from sslax.data import digits_arrays, to_global  # noqa: E402
from sslax.methods import make_method  # noqa: E402
from sslax.optim import ema_target  # noqa: E402
from sslax.quickstart import digits_config  # noqa: E402
from sslax.train import create_train_state, make_mesh, make_train_step  # noqa: E402
from sslax.train.mesh import state_shardings  # noqa: E402

_SPECS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
CASES = [((4, 9, 9, 3), (3, 3, 3, 8), (1, 1), "SAME"), ((6, 10, 10, 5), (3, 3, 5, 7), (2, 2), "SAME"),
         ((2, 11, 7, 3), (5, 3, 3, 4), (2, 1), ((1, 3), (2, 0))), ((5, 13, 4), (4, 4, 6), (3,), "VALID"),
         ((2, 5, 6, 4, 2), (3, 2, 3, 2, 3), (1, 2, 1), "SAME")]
FSDP = ml_collections.ConfigDict({"rules": ((".*", "fsdp"),), "axis": "data", "min_size": 0})


def worst(a, b) -> float:
  """max over leaves of ||a - b|| / ||b|| (float64 norms)."""
  return max(float(np.linalg.norm(np.asarray(x, np.float64) - np.asarray(y, np.float64))
                   / np.linalg.norm(np.asarray(y, np.float64))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def conv_grads(conv, x, w, strides, padding):
  dn = lax.conv_dimension_numbers(x.shape, w.shape, _SPECS[x.ndim - 2])

  def loss(x, w):
    y = conv(x, w, strides, padding, dimension_numbers=dn)
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape) / y.size), y
  (_, y), (dx, dw) = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(x, w)
  return {"y": y, "dx": dx, "dw": dw}


def _broken_bwd(kind):
  def bwd(strides, pads, dn, res, g):
    x, w = res
    dx, dw = conv_mod._conv_bwd(strides, pads, dn, res, g)
    ks = w.shape[:-2]
    if kind == "taps reversed":
      dw = jnp.flip(dw, axis=tuple(range(len(ks))))
    elif kind == "padding off by one":
      dw = conv_mod.im2col_weight_grad(x, g, w.shape, strides, ((pads[0][0] + 1, pads[0][1] - 1), *pads[1:]))
    elif kind == "kernel not flipped":
      if all(s == 1 for s in strides):
        dx = conv_mod.im2col_forward(g, w.swapaxes(-1, -2), strides,
                                     tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(ks, pads)))
      else:
        dx = jnp.flip(dx, axis=1)
    return dx, dw.astype(w.dtype)
  return bwd


def convolutions():
  print("== convolutions: max over cases of ||a - b|| / ||b|| (tests/test_conv.py bounds it at 1e-5)")
  rows = {"XLA vs float64": [], "im2col vs float64": [], "im2col vs XLA": []}
  broken = {k: [] for k in ("taps reversed", "padding off by one", "kernel not flipped")}
  for shape, kernel, strides, padding in CASES:
    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), kernel)
    xla = conv_grads(lax.conv_general_dilated, x, w, strides, padding)
    ours = conv_grads(conv_mod.im2col_conv, x, w, strides, padding)
    with jax.enable_x64(True):
      exact = conv_grads(lax.conv_general_dilated, jnp.asarray(np.asarray(x), jnp.float64),
                         jnp.asarray(np.asarray(w), jnp.float64), strides, padding)
    rows["XLA vs float64"].append(worst(xla, exact))
    rows["im2col vs float64"].append(worst(ours, exact))
    rows["im2col vs XLA"].append(worst(ours, xla))
    for kind in broken:
      conv_mod._conv.defvjp(conv_mod._conv_fwd, _broken_bwd(kind))
      jax.clear_caches()
      broken[kind].append(worst({k: v for k, v in conv_grads(conv_mod.im2col_conv, x, w, strides, padding).items()
                                 if k != "y"}, {k: xla[k] for k in ("dx", "dw")}))
      conv_mod._conv.defvjp(conv_mod._conv_fwd, conv_mod._conv_bwd)
      jax.clear_caches()
  for name, values in rows.items():
    print(f"  {name:32s} {max(values):.2e}")
  for name, values in broken.items():
    print(f"  broken: {name:24s} {min(values):.2e} (smallest over cases)")


def _batch(n, seed):
  images, labels = digits_arrays("train")
  idx = np.random.default_rng(seed).permutation(len(images))[:n]
  return {"image": images[idx], "label": labels[idx]}


def _step_grads(config, mesh, tx, batch, shardings_config=None):
  method = make_method(config)
  state = create_train_state(method, tx, seed=0)
  shardings = state_shardings(state, mesh, shardings_config)
  state = jax.device_put(state, shardings)
  state, metrics = make_train_step(method, tx, mesh, shardings)(state, to_global(batch, mesh))
  return float(metrics["loss"]), jax.device_get(state.opt_state[0].trace)


def train_steps():
  devices = jax.devices()
  mesh = make_mesh({"data": -1}, devices)
  tx = optax.chain(optax.trace(decay=0.0), optax.scale(-0.1))  # the trace holds the step's gradient
  batch = _batch(64, 0)
  print("== one SimCLR step on 8 devices: max over leaves of the gradient's ||a - b|| / ||b|| (tests: 1e-4)")
  grads = {}
  for impl in ("xla", "im2col"):
    config = digits_config("smoke")
    config.train.conv_impl = impl
    grads[impl] = _step_grads(config, mesh, tx, batch)[1]
  print(f"  im2col vs XLA                    {worst(grads['im2col'], grads['xla']):.2e}")
  for kind in ("taps reversed", "padding off by one", "kernel not flipped"):
    conv_mod._conv.defvjp(conv_mod._conv_fwd, _broken_bwd(kind))
    jax.clear_caches()
    config = digits_config("smoke")
    config.train.conv_impl = "im2col"
    print(f"  broken im2col: {kind:18s} {worst(_step_grads(config, mesh, tx, batch)[1], grads['xla']):.2e}")
    conv_mod._conv.defvjp(conv_mod._conv_fwd, conv_mod._conv_bwd)
    jax.clear_caches()
  config = digits_config("smoke")
  fsdp = _step_grads(config, mesh, tx, batch, FSDP)[1]
  print(f"  FSDP vs data parallel            {worst(fsdp, grads['xla']):.2e}")
  # a dropped all-reduce: each device's gradient is that of its own 8 examples
  local = {k: v[:len(v) // len(devices)] for k, v in batch.items()}
  one = make_mesh({"data": 1}, devices[:1])
  print(f"  broken: one shard's gradient     {worst(_step_grads(config, one, tx, local)[1], grads['xla']):.2e}")


def fsdp_steps(config_name, steps=3):
  """FSDP against data parallelism over `steps` momentum-SGD steps with an EMA target: trajectories
  from the start (the movement of the parameters), and each step from the state FSDP handed back
  (the change of every float leaf of params, optimizer state and batch statistics)."""
  from sslax.config import load_config

  config = digits_config("smoke")
  if config_name == "tests":  # tests/helpers.method_digits_config('simclr'): the CIFAR smoke recipe on digits
    config = load_config(os.path.join(os.path.dirname(__file__), "simclr_cifar10.py:smoke"))
    config.unlock()
    config.data.source = "digits"
    config.model.in_channels, config.model.width = 1, 8
    config.augment.crop_size, config.augment.crop_scale = (8, 8), (0.35, 1.0)
    config.augment.flip_prob, config.augment.saturation, config.augment.hue, config.augment.grayscale_prob = 0, 0, 0, 0
    config.augment.mean, config.augment.std = (0.3,), (0.4,)
    config.train.batch_size = 64
  mesh = make_mesh({"data": -1}, jax.devices())
  tx = optax.chain(optax.sgd(0.1, momentum=0.9), ema_target(0.9))
  method = make_method(config)
  init = jax.device_get(create_train_state(method, tx, seed=0))  # on the host: each run puts its own copy
  fsdp_shardings = state_shardings(init, mesh, FSDP)
  dp_shardings = state_shardings(init, mesh, None)
  fsdp_step = make_train_step(method, tx, mesh, fsdp_shardings)
  dp_step = make_train_step(method, tx, mesh, dp_shardings)
  floats = lambda s: [np.asarray(x) for x in jax.tree.leaves(jax.device_get((s.params, s.opt_state, s.batch_stats)))
                      if np.issubdtype(np.asarray(x).dtype, np.floating)]
  start = jax.device_get(init.params)

  def trajectory(step, shardings):
    state = jax.device_put(init, shardings)
    for i in range(steps):
      state, _ = step(state, to_global(_batch(64, i), mesh))
    return jax.tree.map(lambda a, b: np.asarray(a) - b, jax.device_get(state.params), start)

  print(f"== FSDP vs data parallel, {config_name} config ({steps} momentum-SGD steps; tests/test_fsdp.py: 1e-4 a step)")
  print(f"  trajectories, movement after {steps}   {worst(trajectory(fsdp_step, fsdp_shardings), trajectory(dp_step, dp_shardings)):.2e}")

  def per_step(scramble=False):
    state, out = jax.device_put(init, fsdp_shardings), []
    for i in range(steps):
      batch = to_global(_batch(64, i), mesh)
      before = jax.device_get(state)
      dp_state, _ = dp_step(jax.device_put(before, dp_shardings), batch)
      if scramble and i > 0:  # the step reads the trace one shard out of place along its split axis
        trace = jax.tree.map(lambda t: jnp.roll(t, t.shape[-1] // 8, axis=-1) if t.shape[-1] % 8 == 0 else t,
                             before.opt_state[0][0].trace)
        state = jax.device_put(before.replace(opt_state=optax.tree_utils.tree_set(before.opt_state, trace=trace)),
                               fsdp_shardings)
      state, _ = fsdp_step(state, batch)
      out.append(max(float(np.linalg.norm(a.astype(np.float64) - d) / (
          1e-4 * np.linalg.norm(d.astype(np.float64) - o) + 2 * np.finfo(np.float32).eps * np.linalg.norm(d)))
          for a, d, o in zip(floats(state), floats(dp_state), floats(before))))
    return out

  print("  each step from the same state, the share of the test's bound used")
  print("  (||a - d|| / (1e-4 ||change|| + 2 eps32 ||d||), max over leaves):")
  print("    clean                              " + ", ".join(f"{e:.2e}" for e in per_step()))
  print("    broken: trace read one shard off   " + ", ".join(f"{e:.2e}" for e in per_step(scramble=True)[1:]))


if __name__ == "__main__":
  print("XLA_FLAGS:", os.environ["XLA_FLAGS"])
  convolutions()
  train_steps()
  fsdp_steps('tests')
  fsdp_steps('quickstart')
