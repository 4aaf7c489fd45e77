"""Colorization as classification over quantized ab bins, with soft targets and class rebalancing.

Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016, Sec. 2.1-2.3
and richzhang/colorization (`NNEncode`, `PriorFactor`): soft-encoded targets
(the 5 nearest bins, Gaussian weights of sigma 5), a rebalancing weight per
pixel from its nearest bin, w proportional to ((1 - lambda) p~ + lambda / Q)^-1
with E_p~[w] = 1 (p~ the empirical bin prior smoothed by a Gaussian of sigma
5), and the annealed mean (T = 0.38) to read a colour from the predicted
distribution.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def soft_encode(ab: jax.Array, bins: jax.Array, *, neighbours: int = 5, sigma: float = 5.0) -> jax.Array:
  """[..., 2] ab values -> [..., Q] targets: Gaussian weights (sigma in ab units) on the
  `neighbours` nearest bin centres `bins` [Q, 2], normalized to sum 1, zero elsewhere."""
  d2 = jnp.sum(jnp.square(ab[..., None, :] - bins), axis=-1)  # [..., Q]
  neg, idx = jax.lax.top_k(-d2, neighbours)
  w = jnp.exp(neg / (2.0 * sigma ** 2))
  w = w / jnp.sum(w, axis=-1, keepdims=True)
  onehot = jax.nn.one_hot(idx, bins.shape[0], dtype=w.dtype)  # [..., k, Q]
  return jnp.einsum("...k,...kq->...q", w, onehot)


def rebalance_weights(prior: np.ndarray, bins: np.ndarray, *, lam: float = 0.5, sigma: float = 5.0) -> np.ndarray:
  """[Q] weights from the empirical bin distribution `prior` [Q] (sums to 1): smoothed by a Gaussian
  of `sigma` over the bin centres `bins` [Q, 2], mixed with the uniform by `lam`, inverted, and
  scaled so that the prior-weighted mean is 1 (the reference's `PriorFactor`)."""
  prior = np.asarray(prior, np.float64)
  d2 = np.sum((bins[:, None, :] - bins[None, :, :]) ** 2, -1)
  kernel = np.exp(-d2 / (2.0 * sigma ** 2))
  smooth = kernel @ prior
  smooth /= smooth.sum()
  w = 1.0 / ((1.0 - lam) * smooth + lam / len(prior))
  return (w / np.sum(smooth * w)).astype(np.float32)


def colorization_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array
                      ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Rebalanced multinomial cross-entropy: mean over pixels of w[argmax_q targets] * -sum_q targets
  log softmax(logits).

  Args:
    logits: [B, h, w, Q]; targets: [B, h, w, Q] soft-encoded (`soft_encode`); weights: [Q]
      (`rebalance_weights`).

  Returns: (loss, {"bin_accuracy": fraction of pixels whose most likely bin is the target's
  nearest}).
  """
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nearest = jnp.argmax(targets, axis=-1)
  ce = -jnp.sum(targets * log_p, axis=-1)
  loss = jnp.mean(weights[nearest] * ce)
  return loss, {"bin_accuracy": jnp.mean(jnp.argmax(logits, -1) == nearest)}


def annealed_mean(logits: jax.Array, bins: jax.Array, temperature: float = 0.38) -> jax.Array:
  """[..., Q] logits -> [..., 2] ab: the mean of the bins under softmax(log p / T), the paper's
  compromise between the mode (vivid, patchy) and the mean (desaturated)."""
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jax.nn.softmax(log_p / temperature, axis=-1) @ bins
