"""Masked mean pooling, the one reduction every sequence model's pooled features use."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(hidden: jax.Array, valid: jax.Array) -> jax.Array:
  """Mean of hidden [B, L, D] over the positions where valid [B, L] is true -> [B, D] float32
  (zeros for a row with no valid position)."""
  w = valid.astype(jnp.float32)[..., None]
  return jnp.sum(hidden.astype(jnp.float32) * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)
