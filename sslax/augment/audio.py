"""Jittable, key-driven audio transforms: random crops, per-utterance normalization, wav2vec 2.0's
span masks and distractor sampling (Baevski et al., "wav2vec 2.0", NeurIPS 2020).

All shapes are static; variable lengths are carried as `lengths` [B] and
boolean masks, so the same code runs under jit on any number of devices.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop(key: jax.Array, audio: jax.Array, lengths: jax.Array, crop: int) -> tuple[jax.Array, jax.Array]:
  """A random window of `crop` samples inside each recording's valid part.

  Args:
    audio: [B, L] float waveforms, zero-padded after `lengths`.
    lengths: [B] int valid samples.
    crop: window length (<= L). Recordings shorter than it keep their start
      and stay zero-padded.

  Returns:
    ([B, crop] audio, [B] valid lengths min(length, crop)).
  """
  b, total = audio.shape
  if crop > total:
    raise ValueError(f"audio.crop_samples: expected at most data.max_samples={total}, got {crop}")
  room = jnp.maximum(lengths - crop, 0)
  starts = jnp.floor(jax.random.uniform(key, (b,)) * (room + 1).astype(jnp.float32)).astype(jnp.int32)
  starts = jnp.minimum(starts, room)
  out = jax.vmap(lambda x, s: jax.lax.dynamic_slice(x, (s,), (crop,)))(audio, starts)
  return out, jnp.minimum(lengths, crop)


def normalize(audio: jax.Array, lengths: jax.Array, eps: float = 1e-7) -> jax.Array:
  """Zero mean, unit variance over each recording's valid samples (Hugging Face's
  `Wav2Vec2FeatureExtractor(do_normalize=True)`); padding stays 0. audio [B, L], lengths [B]."""
  valid = jnp.arange(audio.shape[1])[None, :] < lengths[:, None]
  n = jnp.maximum(lengths, 1)[:, None].astype(audio.dtype)
  mean = jnp.sum(jnp.where(valid, audio, 0.0), axis=1, keepdims=True) / n
  var = jnp.sum(jnp.where(valid, (audio - mean) ** 2, 0.0), axis=1, keepdims=True) / n
  return jnp.where(valid, (audio - mean) / jnp.sqrt(var + eps), 0.0)


def span_mask(key: jax.Array, lengths: jax.Array, num_frames: int, *, mask_prob: float, mask_length: int,
              min_masks: int = 0) -> jax.Array:
  """wav2vec 2.0's time mask: spans of `mask_length` frames starting at randomly chosen frames.

  As fairseq's / Hugging Face's `compute_mask_indices` ("static" lengths):
  each utterance of `n` valid frames gets `int(mask_prob * n / mask_length +
  u)` span starts (u ~ U[0, 1) per utterance; at least `min_masks`, at
  most the number of possible starts), drawn without replacement from the
  starts whose span fits inside the valid frames; spans may overlap, so
  about half of the frames are masked at p = 0.65 / M = 10 (the paper's
  p = 0.065 per frame). Padding is never masked. Unlike fairseq's
  `require_same_masks` the number of masked frames may differ between
  utterances; losses weight by the mask instead.

  Args:
    lengths: [B] int valid frames per utterance.
    num_frames: T, the padded number of frames.
    mask_prob: fairseq's `mask_prob` (0.65), i.e. the paper's p times M.
    mask_length: M, frames per span (10).

  Returns:
    [B, T] bool, True at masked frames.
  """
  b = lengths.shape[0]
  k_num, k_start = jax.random.split(key)
  num_starts = jnp.maximum(lengths - mask_length + 1, 0)  # spans fit inside the valid frames
  u = jax.random.uniform(k_num, (b,))
  num_spans = jnp.floor(mask_prob * lengths / mask_length + u).astype(jnp.int32)
  num_spans = jnp.minimum(jnp.maximum(num_spans, min_masks), num_starts)
  covered = spans_from_starts(k_start, num_starts, num_spans, num_frames, mask_length)
  return covered & (jnp.arange(num_frames)[None, :] < lengths[:, None])


def spans_from_starts(key: jax.Array, num_starts: jax.Array, num_spans: jax.Array, num_frames: int,
                      span: int) -> jax.Array:
  """[B, T] bool: frames covered by `num_spans` [B] spans of `span` frames whose starts are drawn
  without replacement from frames [0, num_starts) [B] (spans may overlap)."""
  b = num_starts.shape[0]
  # without replacement: the num_spans smallest of i.i.d. uniform scores over the possible starts
  frames = jnp.arange(num_frames)
  scores = jnp.where(frames[None, :] < num_starts[:, None], jax.random.uniform(key, (b, num_frames)), 2.0)
  rank = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
  starts = rank < num_spans[:, None]  # [B, T] bool at chosen start frames
  # frame t is covered when a start lies in (t - span, t]
  window = jnp.ones((span,), jnp.int32)
  covered = jax.vmap(lambda s: jnp.convolve(s.astype(jnp.int32), window, mode="full")[:num_frames])(starts)
  return covered > 0


def sample_negatives(key: jax.Array, mask: jax.Array, num_negatives: int) -> tuple[jax.Array, jax.Array]:
  """Distractor frames for every masked frame: other masked frames of the same utterance.

  As fairseq's `sample_negatives` (no cross-utterance negatives): for the
  masked frame of rank r among the utterance's n masked frames, draw
  `num_negatives` ranks uniformly from the n - 1 others (with repetition),
  never r itself.

  Args:
    mask: [B, T] bool masked frames.

  Returns:
    (idx [B, T, K] int32 frame indices, has_negatives [B] bool: n > 1).
    Rows of unmasked frames hold arbitrary masked frames and must be
    weighted out by the caller.
  """
  b, t = mask.shape
  n = jnp.sum(mask, axis=1)  # [B]
  order = jnp.argsort(~mask, axis=1, stable=True)  # masked frame indices first, in time order
  rank = jnp.cumsum(mask, axis=1) - 1  # rank of each masked frame
  u = jax.random.uniform(key, (b, t, num_negatives))
  draw = jnp.floor(u * jnp.maximum(n - 1, 1)[:, None, None]).astype(jnp.int32)
  draw = draw + (draw >= rank[:, :, None])  # skip the positive
  draw = jnp.minimum(draw, jnp.maximum(n - 1, 0)[:, None, None])
  idx = jnp.take_along_axis(order[:, None, :], draw.reshape(b, 1, t * num_negatives), axis=2)
  return idx.reshape(b, t, num_negatives).astype(jnp.int32), n > 1


def mu_law_encode(audio: jax.Array, channels: int = 256) -> jax.Array:
  """Waveforms in [-1, 1] -> int32 classes in [0, channels) by mu-law companding (WaveNet, section
  2.2; ibab/tensorflow-wavenet `mu_law_encode`): f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu), mu =
  channels - 1, then quantized to `channels` levels.

  Examples:
    >>> import jax.numpy as jnp
    >>> mu_law_encode(jnp.array([-1.0, 0.0, 1.0])).tolist()
    [0, 128, 255]
  """
  mu = channels - 1
  x = jnp.clip(audio.astype(jnp.float32), -1.0, 1.0)
  y = jnp.sign(x) * jnp.log1p(mu * jnp.abs(x)) / jnp.log1p(float(mu))
  return jnp.clip(jnp.floor((y + 1.0) / 2.0 * mu + 0.5), 0, mu).astype(jnp.int32)


def mu_law_decode(classes: jax.Array, channels: int = 256) -> jax.Array:
  """The inverse of `mu_law_encode`: int classes -> waveforms in [-1, 1]."""
  mu = channels - 1
  y = 2.0 * classes.astype(jnp.float32) / mu - 1.0
  return jnp.sign(y) * ((1.0 + mu) ** jnp.abs(y) - 1.0) / mu
