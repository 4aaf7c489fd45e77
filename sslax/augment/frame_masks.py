"""Masked acoustic modelling's input alterations, drawn on device from a key: Mockingjay's time
masks (Liu et al. 2020) and TERA's frequency masks and magnitude noise (Liu et al. 2021).

As s3prl's `generate_masked_acoustic_model_data` (`pretrain/mockingjay/task.py`),
per utterance of n valid frames:

- time: `round(n * proportion / span)` spans of `span` frames, starts drawn
  without replacement from [0, n - span - 1] (overlap allowed, s3prl's
  `mask_allow_overlap: True`); then one dice per utterance: 80% the spans are
  zeroed, 10% replaced by other frames of the utterance, 10% left as they are.
  The loss is taken on every chosen frame in all three cases.
- frequency: a band of `randint(0, int(F * max_fraction))` bins starting
  at a random bin is zeroed over the whole utterance; the loss is taken on
  those bins of the valid frames.
- noise: with probability `noise_prob`, N(0, 0.2^2) added to every frame.

Two departures, for static shapes and sharded batches: replaced spans copy
the frames `d` later in the utterance (cyclically, one random d in [1, n) per
utterance) instead of separately drawn random spans, and the noise dice is
thrown per utterance instead of once per batch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.augment.audio import spans_from_starts


def time_mask(key: jax.Array, frames: jax.Array, num_frames: int, *, proportion: float, span: int) -> jax.Array:
  """[B, T] bool frames chosen for masking; frames [B] valid frames per utterance, T = num_frames."""
  num_spans = jnp.round(frames * proportion / span).astype(jnp.int32)
  num_starts = jnp.maximum(frames - span, 1)  # starts 0 .. max(n - span - 1, 0)
  chosen = spans_from_starts(key, num_starts, num_spans, num_frames, span)
  return chosen & (jnp.arange(num_frames)[None, :] < frames[:, None])


def alter_frames(key: jax.Array, feats: jax.Array, valid: jax.Array, *, time_proportion: float, span: int,
                 freq_fraction: float = 0.0, noise_prob: float = 0.0, noise_std: float = 0.2
                 ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
  """Mockingjay / TERA alterations of feats [B, T, F] (valid [B, T] bool).

  Returns:
    (altered [B, T, F], labels [B, T, F] bool: where the reconstruction loss is taken,
    {"time": [B, T] bool chosen frames, "freq": [B, F] bool masked bins, "noised": [B] bool}).
  """
  b, t, f = feats.shape
  k_time, k_dice, k_shift, k_width, k_start, k_noise_dice, k_noise = jax.random.split(key, 7)
  frames = jnp.sum(valid, axis=1).astype(jnp.int32)
  chosen = time_mask(k_time, frames, t, proportion=time_proportion, span=span) if time_proportion > 0 else \
      jnp.zeros((b, t), bool)
  dice = jax.random.uniform(k_dice, (b,))
  zero, replace = dice < 0.8, (dice >= 0.8) & (dice < 0.9)
  shift = jnp.floor(jax.random.uniform(k_shift, (b,)) * jnp.maximum(frames - 1, 1)).astype(jnp.int32) + 1
  source = (jnp.arange(t)[None, :] + shift[:, None]) % jnp.maximum(frames, 1)[:, None]
  replaced = jnp.take_along_axis(feats, source[..., None], axis=1)
  out = jnp.where((chosen & zero[:, None])[..., None], 0.0, feats)
  out = jnp.where((chosen & replace[:, None])[..., None], replaced, out)
  labels = jnp.broadcast_to(chosen[..., None], (b, t, f))
  bins = jnp.zeros((b, f), bool)
  if freq_fraction > 0:
    max_width = int(f * freq_fraction)
    width = jax.random.randint(k_width, (b,), 0, max_width + 1)
    start = jnp.floor(jax.random.uniform(k_start, (b,)) * (f - width)).astype(jnp.int32)
    band = jnp.arange(f)[None, :]
    bins = (band >= start[:, None]) & (band < (start + width)[:, None])
    out = jnp.where(bins[:, None, :], 0.0, out)
    labels = labels | (bins[:, None, :] & valid[..., None])
  noised = jnp.zeros((b,), bool)
  if noise_prob > 0:
    noised = jax.random.uniform(k_noise_dice, (b,)) < noise_prob
    out = out + jnp.where(noised[:, None, None], noise_std * jax.random.normal(k_noise, out.shape), 0.0)
  out = jnp.where(valid[..., None], out, 0.0)
  return out, labels, {"time": chosen, "freq": bins, "noised": noised}
