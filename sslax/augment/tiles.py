"""Tiles and patches cut from a grid for the spatial pretext tasks (jigsaw puzzles, relative patch
position): random offsets inside each cell (the gaps against edge matching), per-channel jitter,
per-tile standardization.

Noroozi & Favaro 2016 (jigsaw); Doersch, Gupta, Efros 2015 (relative position).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def standardize(x: jax.Array, axes=(-3, -2), eps: float = 1e-5) -> jax.Array:
  """Per-channel mean 0 and std 1 over `axes` (each tile, or each image, on its own)."""
  mean = jnp.mean(x, axis=axes, keepdims=True)
  return (x - mean) / jnp.sqrt(jnp.var(x, axis=axes, keepdims=True) + eps)


def cut_tiles(key: jax.Array, images: jax.Array, grid: int, tile: int) -> jax.Array:
  """[B, H, W, C] -> [B, grid * grid, tile, tile, C] in raster order, each tile at a random offset
  inside its cell of H // grid pixels (the gaps)."""
  b, h, _, c = images.shape
  cell = h // grid
  offsets = jax.random.randint(key, (b, grid * grid, 2), 0, cell - tile + 1)
  corners = jnp.array([(r * cell, col * cell) for r in range(grid) for col in range(grid)])

  def one(image, offs):
    return jnp.stack([jax.lax.dynamic_slice(image, (*(corners[t] + offs[t]), 0), (tile, tile, c))
                      for t in range(grid * grid)])

  return jax.vmap(one)(images, offsets)


def channel_jitter(key: jax.Array, tiles: jax.Array, amount: float) -> jax.Array:
  """Adds to each channel of each tile of [..., t, t, C] one shift drawn uniformly from [-amount, amount]
  (the jigsaw reference's per-tile colour jitter)."""
  shape = (*tiles.shape[:-3], 1, 1, tiles.shape[-1])
  return tiles + amount * jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
