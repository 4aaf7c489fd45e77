import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.optim import cosine_tau_schedule, ema_target, ema_target_params


def _run(tx, params, grads_seq):
  state = tx.init(params)

  @jax.jit
  def step(params, state, g):
    updates, state = tx.update(g, state, params)
    return optax.apply_updates(params, updates), state

  for g in grads_seq:
    params, state = step(params, state, g)
  return params, state


def test_ema_target_equals_formula_over_many_steps_on_8_devices(devices):
  rng = np.random.default_rng(0)
  mesh = Mesh(np.array(devices), ("data",))
  rep = NamedSharding(mesh, P())
  params = {"w": jax.device_put(jnp.asarray(rng.normal(size=(8, 4)), jnp.float32), rep),
            "b": jax.device_put(jnp.zeros(4), rep)}
  grads = [{"w": jnp.asarray(rng.normal(size=(8, 4)), jnp.float32), "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
           for _ in range(50)]
  schedule = cosine_tau_schedule(0.9, total_steps=50)
  tx = optax.chain(optax.sgd(0.1, momentum=0.9), ema_target(schedule))
  final, state = _run(tx, params, grads)

  # the formula, step by step in NumPy float64
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  t = {k: v.copy() for k, v in p.items()}
  mom = {k: np.zeros_like(v) for k, v in p.items()}
  for k_step, g in enumerate(grads):
    tau = 1 - (1 - 0.9) * (np.cos(np.pi * k_step / 50) + 1) / 2
    for k in p:
      mom[k] = 0.9 * mom[k] + np.asarray(g[k], np.float64)
      p[k] = p[k] - 0.1 * mom[k]
      t[k] = t[k] + (1 - tau) * (p[k] - t[k])
  target = ema_target_params(state)
  for k in p:
    np.testing.assert_allclose(np.asarray(final[k]), p[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(target[k]), t[k], rtol=1e-4, atol=1e-5)
    assert target[k].sharding.is_fully_replicated


def test_tau_one_freezes_target_and_tau_zero_copies_params():
  params = {"w": jnp.ones(3)}
  grads = [{"w": jnp.ones(3)}] * 3
  final, state = _run(optax.chain(optax.sgd(1.0), ema_target(1.0)), params, grads)
  np.testing.assert_array_equal(np.asarray(ema_target_params(state)["w"]), np.ones(3))
  final, state = _run(optax.chain(optax.sgd(1.0), ema_target(0.0)), params, grads)
  np.testing.assert_array_equal(np.asarray(ema_target_params(state)["w"]), np.asarray(final["w"]))
  assert float(cosine_tau_schedule(0.996, 100)(0)) == np.float32(0.996)
  assert float(cosine_tau_schedule(0.996, 100)(100)) == 1.0
