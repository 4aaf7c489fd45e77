"""EMA target parameters as an optax transform (BYOL, DINO, MoCo momentum encoders).

`optax.ema` averages *updates*; this keeps an exponential moving average of
the *parameters*, which optax does not provide.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


class EmaTargetState(NamedTuple):
  count: jax.Array  # int32: number of updates applied so far
  target: Any       # the target parameters, same structure as the params


def cosine_tau_schedule(base_tau: float, total_steps: int, final_tau: float = 1.0) -> Callable:
  """BYOL's momentum schedule: tau_k = final - (final - base) * (cos(pi k / K) + 1) / 2."""

  def schedule(step):
    progress = jnp.clip(step / max(total_steps, 1), 0.0, 1.0)
    return final_tau - (final_tau - base_tau) * (jnp.cos(math.pi * progress) + 1) / 2

  return schedule


def ema_target(tau: float | Callable[[jax.Array], jax.Array]) -> optax.GradientTransformation:
  """Tracks target params `t <- t + (1 - tau) * (p_new - t)`, p_new = params + updates.

  Grill et al., "Bootstrap Your Own Latent" (NeurIPS 2020), eq. 1; tau may be
  a constant or a schedule of the update count (see `cosine_tau_schedule`).
  Put it last in an `optax.chain`, after the transforms that produce the
  final updates: it passes the updates through unchanged and needs `params`.
  The target is initialized to a copy of the initial params and lives in the
  optimizer state, so it is sharded and checkpointed with it.

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> tx = optax.chain(optax.sgd(1.0), ema_target(0.9))
    >>> params = {"w": jnp.zeros(2)}
    >>> state = tx.init(params)
    >>> updates, state = tx.update({"w": -jnp.ones(2)}, state, params)  # p_new = 0 + 1 = 1
    >>> [round(float(v), 4) for v in ema_target_params(state)["w"]]    # 0 + 0.1 * (1 - 0)
    [0.1, 0.1]
  """
  tau_fn = tau if callable(tau) else (lambda _: jnp.asarray(tau, jnp.float32))

  def init_fn(params):
    return EmaTargetState(count=jnp.zeros((), jnp.int32), target=jax.tree.map(jnp.array, params))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError("ema_target: expected `params` in update(updates, state, params), got None")
    t = tau_fn(state.count)
    new_params = optax.apply_updates(params, updates)
    target = jax.tree.map(lambda tp, p: tp + (1.0 - t) * (p - tp), state.target, new_params)
    return updates, EmaTargetState(count=state.count + 1, target=target)

  return optax.GradientTransformation(init_fn, update_fn)


def _ema_states(opt_state) -> list[EmaTargetState]:
  return [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, EmaTargetState))
          if isinstance(s, EmaTargetState)]


def ema_target_params(opt_state) -> Any:
  """The target parameters held by the `ema_target` inside `opt_state` (any chain nesting)."""
  found = _ema_states(opt_state)
  if len(found) != 1:
    raise ValueError(f"opt_state: expected exactly one ema_target state, found {len(found)}")
  return found[0].target


def find_ema_target(opt_state) -> Any | None:
  """Like `ema_target_params`, but None when `opt_state` holds no `ema_target`."""
  return ema_target_params(opt_state) if _ema_states(opt_state) else None
