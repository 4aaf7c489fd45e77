"""Jittable, key-driven input corruptions for denoising and inpainting autoencoders, applied to
normalized images [B, H, W, C] (0 is the dataset mean).

Vincent et al., "Extracting and Composing Robust Features with Denoising
Autoencoders", ICML 2008 (additive Gaussian and masking noise); Pathak et
al., "Context Encoders: Feature Learning by Inpainting", CVPR 2016 (the
central hole).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.losses.masked_image import center_box

CORRUPTIONS = ("gaussian", "masking", "center")


def gaussian_noise(key: jax.Array, x: jax.Array, std: float) -> jax.Array:
  """x + std * N(0, 1), independently per element."""
  return x + std * jax.random.normal(key, x.shape, x.dtype)


def masking_noise(key: jax.Array, x: jax.Array, fraction: float) -> jax.Array:
  """Vincent et al.'s masking noise: each element set to 0 (the mean) with probability `fraction`."""
  return jnp.where(jax.random.uniform(key, x.shape) < fraction, jnp.zeros((), x.dtype), x)


def center_hole(x: jax.Array, overlap: int) -> jax.Array:
  """Context encoders' input: the centre square of side H / 2, less `overlap` pixels on each side,
  filled with the mean (0); the same hole for every image, as the reference's 'center' masking.

  >>> import numpy as np
  >>> hole = center_hole(np.ones((1, 8, 8, 1), np.float32), overlap=0)
  >>> int((hole == 0).sum())  # the central 4x4
  16
  """
  h, w = x.shape[1:3]
  r0, r1 = center_box(h, overlap)
  c0, c1 = center_box(w, overlap)
  rows, cols = jnp.arange(h), jnp.arange(w)
  hole = ((rows >= r0) & (rows < r1))[:, None] & ((cols >= c0) & (cols < c1))[None, :]
  return jnp.where(hole[None, :, :, None], jnp.zeros((), x.dtype), x)


def corrupt(key: jax.Array, x: jax.Array, kind: str, *, noise_std: float = 0.5, mask_fraction: float = 0.5,
            overlap: int = 0) -> jax.Array:
  """The corruption `kind` (one of CORRUPTIONS) of normalized images x [B, H, W, C]."""
  if kind == "gaussian":
    return gaussian_noise(key, x, noise_std)
  if kind == "masking":
    return masking_noise(key, x, mask_fraction)
  if kind == "center":
    return center_hole(x, overlap)
  raise ValueError(f"method.corruption: expected one of {list(CORRUPTIONS)}, got {kind!r}")
