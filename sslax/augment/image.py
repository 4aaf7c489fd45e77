"""Jittable, key-driven, per-example image augmentations.

Each transform takes `(key, image)` with `image` [H, W, C] float in [0, 1]
and returns an image of the same dtype; `augment_batch` vmaps a recipe over a
batch with one key per example, so the same key gives the same output on any
number of devices. Semantics follow torchvision's transforms as used by the
SimCLR / BYOL / solo-learn recipes, with the differences noted per function.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# ITU-R 601-2, as torchvision. A NumPy constant: a jnp array made at import would start JAX's
# backends, after which jax.distributed.initialize() (multi-host runs) refuses to run.
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def _with_prob(key, p, fn, image):
  return jnp.where(jax.random.uniform(key) < p, fn(image), image)


def grayscale_of(image: jax.Array) -> jax.Array:
  """[H, W, C] -> [H, W, 1] luma (identity for one channel)."""
  if image.shape[-1] == 1:
    return image
  return jnp.sum(image * _GRAY_WEIGHTS, axis=-1, keepdims=True)


def random_resized_crop(key, image, size: Sequence[int], scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
  """Crops a random area fraction in `scale` with aspect ratio in `ratio`, resized to `size`.

  As torchvision's RandomResizedCrop, except that instead of 10 rejection
  trials the sampled width and height are clipped to the image (no retry
  loop in a jitted function). Resampling is bilinear with antialiasing.
  """
  h, w, c = image.shape
  k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
  area = h * w * jax.random.uniform(k_area, minval=scale[0], maxval=scale[1])
  log_ratio = jax.random.uniform(k_ratio, minval=math.log(ratio[0]), maxval=math.log(ratio[1]))
  aspect = jnp.exp(log_ratio)
  crop_w = jnp.clip(jnp.sqrt(area * aspect), 1.0, w)
  crop_h = jnp.clip(jnp.sqrt(area / aspect), 1.0, h)
  y0 = jax.random.uniform(k_y) * (h - crop_h)
  x0 = jax.random.uniform(k_x) * (w - crop_w)
  out_h, out_w = size
  scale_yx = jnp.stack([out_h / crop_h, out_w / crop_w])
  translation = -jnp.stack([y0, x0]) * scale_yx
  return jax.image.scale_and_translate(image, (out_h, out_w, c), (0, 1), scale_yx, translation,
                                       method="linear", antialias=True)


def horizontal_flip(key, image, p: float = 0.5):
  return _with_prob(key, p, lambda x: x[:, ::-1, :], image)


def _adjust_brightness(x, f):
  return jnp.clip(x * f, 0.0, 1.0)


def _adjust_contrast(x, f):
  mean = jnp.mean(grayscale_of(x))
  return jnp.clip(mean + f * (x - mean), 0.0, 1.0)


def _adjust_saturation(x, f):
  return jnp.clip(grayscale_of(x) + f * (x - grayscale_of(x)), 0.0, 1.0)


def _rgb_to_hsv(rgb):
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  maxc = jnp.max(rgb, axis=-1)
  minc = jnp.min(rgb, axis=-1)
  delta = maxc - minc
  safe = jnp.where(delta > 0, delta, 1.0)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  hue = jnp.where(maxc == r, bc - gc, jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  hue = jnp.where(delta > 0, (hue / 6.0) % 1.0, 0.0)
  sat = jnp.where(maxc > 0, delta / jnp.where(maxc > 0, maxc, 1.0), 0.0)
  return jnp.stack([hue, sat, maxc], axis=-1)


def _hsv_to_rgb(hsv):
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  i = jnp.floor(h * 6.0)
  f = h * 6.0 - i
  p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
  i = i.astype(jnp.int32) % 6
  r = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4, i == 5], [v, q, p, p, t, v])
  g = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4, i == 5], [t, v, v, q, p, p])
  b = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4, i == 5], [p, p, t, v, v, q])
  return jnp.stack([r, g, b], axis=-1)


def _adjust_hue(x, shift):
  hsv = _rgb_to_hsv(x)
  hsv = hsv.at[..., 0].set((hsv[..., 0] + shift) % 1.0)
  return _hsv_to_rgb(hsv)


def color_jitter(key, image, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8):
  """torchvision's ColorJitter applied with probability p, in a random order per image.

  Factors are drawn uniformly from [1-b, 1+b], [1-c, 1+c], [1-s, 1+s] and the
  hue shift from [-h, h]. Saturation and hue need 3 channels and are skipped
  for one-channel images.
  """
  k_apply, k_order, kb, kc, ks, kh = jax.random.split(key, 6)
  fb = jax.random.uniform(kb, minval=1 - brightness, maxval=1 + brightness)
  fc = jax.random.uniform(kc, minval=1 - contrast, maxval=1 + contrast)
  fs = jax.random.uniform(ks, minval=1 - saturation, maxval=1 + saturation)
  fh = jax.random.uniform(kh, minval=-hue, maxval=hue)
  ops = [lambda x: _adjust_brightness(x, fb), lambda x: _adjust_contrast(x, fc)]
  if image.shape[-1] == 3:
    ops += [lambda x: _adjust_saturation(x, fs), lambda x: _adjust_hue(x, fh)]
  order = jax.random.permutation(k_order, len(ops))

  def jitter(x):
    for i in range(len(ops)):
      x = jax.lax.switch(order[i], ops, x)
    return x

  return _with_prob(k_apply, p, jitter, image)


def random_grayscale(key, image, p: float = 0.2):
  """With probability p, replaces every channel by the luma (torchvision RandomGrayscale)."""
  return _with_prob(key, p, lambda x: jnp.broadcast_to(grayscale_of(x), x.shape), image)


def gaussian_blur(key, image, p: float = 0.5, sigma=(0.1, 2.0), kernel_size: int | None = None):
  """With probability p, a separable Gaussian blur with sigma ~ U(sigma); reflect padding.

  kernel_size defaults to 10% of the image side rounded to odd, as SimCLR's
  recipe (23 px at 224).
  """
  h = image.shape[0]
  if kernel_size is None:
    kernel_size = max(3, int(0.1 * h) // 2 * 2 + 1)
  k_apply, k_sigma = jax.random.split(key)
  s = jax.random.uniform(k_sigma, minval=sigma[0], maxval=sigma[1])
  radius = kernel_size // 2
  t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  weights = jnp.exp(-0.5 * (t / s) ** 2)
  weights = weights / jnp.sum(weights)

  def blur(x):
    x = jnp.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    # Correlate along H then W with the same 1-D kernel.
    x = sum(weights[i] * x[i:i + image.shape[0], :, :] for i in range(kernel_size))
    x = sum(weights[i] * x[:, i:i + image.shape[1], :] for i in range(kernel_size))
    return x

  return _with_prob(k_apply, p, blur, image)


def solarize(key, image, p: float = 0.0, threshold: float = 0.5):
  """With probability p, inverts pixels at or above `threshold` (BYOL's recipe)."""
  return _with_prob(key, p, lambda x: jnp.where(x >= threshold, 1.0 - x, x), image)


def normalize(image, mean: Sequence[float], std: Sequence[float]):
  return (image - jnp.asarray(mean, image.dtype)) / jnp.asarray(std, image.dtype)


def to_float(images: jax.Array) -> jax.Array:
  """uint8 [.., H, W, C] in [0, 255] -> float32 in [0, 1]; floats pass through as float32."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


def augment_image(key, image, recipe) -> jax.Array:
  """Applies one view recipe (a ConfigDict or mapping, see `experiments/`) to one image."""
  keys = jax.random.split(key, 6)
  x = random_resized_crop(keys[0], image, recipe["crop_size"], tuple(recipe["crop_scale"]))
  x = horizontal_flip(keys[1], x, recipe["flip_prob"])
  x = color_jitter(keys[2], x, recipe["brightness"], recipe["contrast"], recipe["saturation"],
                   recipe["hue"], recipe["jitter_prob"])
  x = random_grayscale(keys[3], x, recipe["grayscale_prob"])
  x = gaussian_blur(keys[4], x, recipe["blur_prob"])
  x = solarize(keys[5], x, recipe["solarize_prob"])
  return normalize(x, recipe["mean"], recipe["std"])


def augment_batch(key, images, recipe) -> jax.Array:
  """[B, H, W, C] uint8 or float in [0, 1] -> [B, crop, crop, C] float32, one key per example."""
  keys = jax.random.split(key, images.shape[0])
  return jax.vmap(lambda k, x: augment_image(k, x, recipe))(keys, to_float(images))


def eval_transform(images, recipe) -> jax.Array:
  """The deterministic evaluation view: resize to the crop size, normalize."""
  x = to_float(images)
  b, h, w, c = x.shape
  size = tuple(recipe["crop_size"])
  if (h, w) != size:
    x = jax.image.resize(x, (b, *size, c), method="linear", antialias=True)
  return normalize(x, recipe["mean"], recipe["std"])
