"""Frame reconstruction losses of the frame-level speech methods: APC's future-frame l1 (Chung et
al. 2019) and Mockingjay / TERA's l1 on altered positions (Liu et al. 2020, 2021), as s3prl's
`L1Loss` over the selected elements."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_l1(pred: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
  """Mean |pred - target| over the elements where `weights` is nonzero (weighted).

  Args:
    pred: [B, T, F].
    target: [B, T, F].
    weights: [B, T, F] or [B, T] (broadcast over F), bool or float.

  Returns:
    scalar float32; 0 when no element is selected.

  Examples:
    >>> import jax.numpy as jnp
    >>> float(masked_l1(jnp.ones((1, 2, 2)), jnp.zeros((1, 2, 2)), jnp.array([[True, False]])))
    1.0
  """
  w = weights.astype(jnp.float32)
  if w.ndim == pred.ndim - 1:
    w = jnp.broadcast_to(w[..., None], pred.shape)
  err = jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32))
  return jnp.sum(err * w) / jnp.maximum(jnp.sum(w), 1.0)


def future_frame_l1(pred: jax.Array, feats: jax.Array, valid: jax.Array, shift: int) -> jax.Array:
  """APC's loss: the output at frame t predicts input frame t + shift; l1 over the valid targets.

  Args:
    pred: [B, T, F] predictions; feats: [B, T, F] input frames; valid: [B, T] bool; shift: n >= 1
      (s3prl's `n_future`, 5 by default).

  Returns:
    scalar float32, mean over the elements of the frames t with t + shift valid.
  """
  if not 0 < shift < pred.shape[1]:
    raise ValueError(f"method.shift: expected an integer in [1, {pred.shape[1] - 1}] (frames - 1), got {shift}")
  return masked_l1(pred[:, :-shift], feats[:, shift:], valid[:, shift:])
