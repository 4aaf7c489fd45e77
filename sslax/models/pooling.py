"""Pooling a sequence model's per-token states into one vector: masked mean, [CLS], last token."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_mean(hidden: jax.Array, valid: jax.Array) -> jax.Array:
  """Mean of hidden [B, L, D] over the positions where valid [B, L] is true -> [B, D] float32
  (zeros for a row with no valid position)."""
  w = valid.astype(jnp.float32)[..., None]
  return jnp.sum(hidden.astype(jnp.float32) * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)


def pool_tokens(hidden: jax.Array, valid: jax.Array, pooling: str) -> jax.Array:
  """hidden [B, L, D] -> [B, D] float32: "mean" over the valid [B, L] positions, "cls" the first
  token, "last" the last valid one (what a causal model has read the whole text at; valid
  positions come first in each row)."""
  if pooling == "cls":
    return hidden[:, 0].astype(jnp.float32)
  if pooling == "last":
    last = jnp.maximum(jnp.sum(valid, axis=1) - 1, 0)
    return jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0].astype(jnp.float32)
  return masked_mean(hidden, valid)
