"""CIE Lab on device, and the quantized ab bins of colorization.

The sRGB (D65) <-> CIE Lab conversion as scikit-image's `rgb2lab` / `lab2rgb` (the transform
richzhang/colorization uses), written in jax.numpy so a step converts its own batch. The bins
are Zhang, Isola, Efros, "Colorful Image Colorization" (ECCV 2016), Sec. 2.1: a grid of side
`grid` over the ab plane, kept where some sRGB colour falls.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# sRGB (linear) -> XYZ, D65, and the D65 white point (as scikit-image)
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]], np.float64)
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float64)


def as_rgb(images: jax.Array) -> jax.Array:
  """[..., 1 or 3] -> [..., 3]: gray repeated into RGB, RGB as it is."""
  return jnp.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
  """sRGB [..., 3] in [0, 1] -> Lab [..., 3]: L in [0, 100], a and b about [-110, 110].

  >>> import numpy as np
  >>> lab = np.asarray(rgb_to_lab(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])), np.float64)
  >>> [[round(float(v), 1) + 0.0 for v in row] for row in lab]  # white, then pure red
  [[100.0, 0.0, 0.0], [53.2, 80.1, 67.2]]
  """
  x = jnp.asarray(rgb, jnp.float32)
  linear = jnp.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
  xyz = linear @ jnp.asarray(_RGB_TO_XYZ.T, jnp.float32) / jnp.asarray(_WHITE, jnp.float32)
  f = jnp.where(xyz > 0.008856, jnp.cbrt(jnp.maximum(xyz, 1e-12)), 7.787 * xyz + 16.0 / 116.0)
  return jnp.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def lab_to_rgb(lab: jax.Array) -> jax.Array:
  """Lab [..., 3] -> sRGB [..., 3], clipped to [0, 1] (colours outside the gamut are clipped)."""
  lab = jnp.asarray(lab, jnp.float32)
  fy = (lab[..., 0] + 16.0) / 116.0
  f = jnp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], -1)
  xyz = jnp.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / 7.787) * jnp.asarray(_WHITE, jnp.float32)
  linear = jnp.clip(xyz @ jnp.asarray(np.linalg.inv(_RGB_TO_XYZ).T, jnp.float32), 0.0, 1.0)
  return jnp.clip(jnp.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear), 0.0, 1.0)


@functools.lru_cache(maxsize=4)
def ab_bins(grid: float = 10.0, samples: int = 64) -> np.ndarray:
  """[Q, 2] float32 centres of the ab cells of side `grid` that some sRGB colour falls in (the
  colours of a `samples`^3 lattice of the RGB cube): the in-gamut bins. At grid 10 these are
  261 cells, where the reference keeps 313 (pts_in_hull.npy, the cells of ImageNet's colours
  and the hull's edge).

  >>> len(ab_bins(10.0)) > 250, len(ab_bins(20.0)) < 100
  (True, True)
  """
  axis = np.linspace(0.0, 1.0, samples, dtype=np.float32)
  cube = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
  with jax.ensure_compile_time_eval():  # a method may ask for its bins while its model is traced
    ab = np.asarray(rgb_to_lab(cube))[:, 1:]
  cells = np.unique(np.round(ab / grid).astype(np.int64), axis=0)
  out = (cells * grid).astype(np.float32)
  out.setflags(write=False)
  return out
