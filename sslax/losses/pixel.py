"""Exact log-likelihood of 8-bit images under a per-sub-pixel categorical, in bits per dimension
(PixelCNN: van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 5; the unit of
openai/pixel-cnn's `bits_per_dim`: nats / (ln 2 * H * W * C)).

The 256-way softmax of a sub-pixel is the exact probability of its integer value, so no
dequantization noise is needed: bits/dim is -log2 p(x) averaged over sub-pixels. Uniform over
256 values is exactly 8 bits/dim.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def pixel_nll(logits: jax.Array, pixels: jax.Array) -> jax.Array:
  """Negative log-likelihood in nats of each sub-pixel.

  Args:
    logits: [..., K] unnormalized log-probabilities of the K values of each sub-pixel.
    pixels: [...] integer values in [0, K).

  Returns:
    [...] float32, -log softmax(logits)[pixel].

  Examples:
    >>> import jax.numpy as jnp
    >>> round(float(pixel_nll(jnp.zeros((256,)), jnp.asarray(7))), 5)  # uniform: ln 256
    5.54518
  """
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(log_p, pixels.astype(jnp.int32)[..., None], axis=-1)[..., 0]


def bits_per_dim(logits: jax.Array, pixels: jax.Array) -> jax.Array:
  """Bits per dimension of each image: the mean over its sub-pixels of -log2 p(x).

  Args:
    logits: [B, H, W, C, K] (any [B, ..., K]).
    pixels: [B, H, W, C] integers in [0, K).

  Returns:
    [B] float32.

  Examples:
    >>> import jax.numpy as jnp
    >>> [round(b, 5) for b in bits_per_dim(jnp.zeros((2, 4, 4, 3, 256)), jnp.zeros((2, 4, 4, 3), jnp.int32)).tolist()]
    [8.0, 8.0]
  """
  nll = pixel_nll(logits, pixels)
  return jnp.mean(nll.reshape(nll.shape[0], -1), axis=1) / math.log(2.0)


def pixelcnn_loss(logits: jax.Array, pixels: jax.Array) -> jax.Array:
  """The PixelCNN objective: mean bits/dim over the batch (a scalar; its gradient is the
  log-likelihood's, scaled by 1 / (ln 2 * B * H * W * C))."""
  return jnp.mean(bits_per_dim(logits, pixels))
