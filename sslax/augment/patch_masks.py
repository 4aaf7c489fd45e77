"""Jittable, key-driven patch masks for masked-image modelling: MAE's per-image random subset
(He et al., CVPR 2022) and SimMIM's masks of larger square cells (Xie et al., CVPR 2022).

Every image draws its own mask from one uniform noise row (the reference's `torch.rand(N, L)`
then `argsort`), so the masks are independent across the batch and equal for one key on any
number of devices.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def num_visible(num_patches: int, mask_ratio: float) -> int:
  """Patches MAE keeps: int(N * (1 - mask_ratio)), as the reference's `len_keep`."""
  return int(num_patches * (1 - mask_ratio))


def random_patch_mask(key: jax.Array, batch: int, num_patches: int, mask_ratio: float):
  """MAE's `random_masking`: a uniformly random subset of `num_visible` patches per image.

  Returns:
    keep: [B, K] int32 indices of the visible patches (in the order the noise ranks them; what
      the encoder gathers with one take).
    restore: [B, N] int32: position of each patch in the shuffled order [visible..., masked...],
      so `take_along_axis(concat([visible, mask tokens]), restore)` puts tokens back in raster order.
    mask: [B, N] float32, 1 for masked patches, 0 for visible ones.

  Examples:
    >>> keep, restore, mask = random_patch_mask(jax.random.PRNGKey(0), 2, 16, 0.75)
    >>> keep.shape, restore.shape, mask.sum(axis=1).tolist()
    ((2, 4), (2, 16), [12.0, 12.0])
  """
  k = num_visible(num_patches, mask_ratio)
  noise = jax.random.uniform(key, (batch, num_patches))
  shuffle = jnp.argsort(noise, axis=1).astype(jnp.int32)
  restore = jnp.argsort(shuffle, axis=1).astype(jnp.int32)
  mask = (restore >= k).astype(jnp.float32)
  return shuffle[:, :k], restore, mask


def block_patch_mask(key: jax.Array, batch: int, grid: int, mask_patch: int, mask_ratio: float) -> jax.Array:
  """SimMIM's `MaskGenerator`: the patch grid cut into cells of `mask_patch` x `mask_patch` patches
  (the reference's mask_patch_size / model_patch_size), ceil(cells * mask_ratio) cells masked per
  image. Returns [B, grid * grid] float32 in raster order, 1 = masked.

  Examples:
    >>> m = block_patch_mask(jax.random.PRNGKey(0), 3, 8, 2, 0.6)
    >>> m.shape, m.sum(axis=1).tolist()  # ceil(16 * 0.6) = 10 cells of 4 patches
    ((3, 64), [40.0, 40.0, 40.0])
  """
  if grid % mask_patch:
    raise ValueError(f"method.mask_patch_size: expected a multiple of the patch size dividing the image "
                     f"({grid} patches a side), got {mask_patch} patches a side")
  cells_side = grid // mask_patch
  cells = cells_side * cells_side
  count = math.ceil(cells * mask_ratio)
  noise = jax.random.uniform(key, (batch, cells))
  rank = jnp.argsort(jnp.argsort(noise, axis=1), axis=1)
  cell_mask = (rank < count).reshape(batch, cells_side, cells_side)
  full = jnp.repeat(jnp.repeat(cell_mask, mask_patch, axis=1), mask_patch, axis=2)
  return full.reshape(batch, grid * grid).astype(jnp.float32)
