"""Contrastive Predictive Coding's InfoNCE over future steps (van den Oord et al. 2018, eq. 4;
facebookresearch/CPC_audio `CPCUnsupersivedCriterion`).

For each step k the prediction W_k c_t scores the true future frame z_{t+k} against N
negatives by dot products; the loss is the cross-entropy of the positive (index 0), averaged
over valid (t, t + k) pairs and then over k. The scores come from one [T', T] matrix per
utterance and step, from which the positive and the negatives' columns are gathered: no
[..., N, C] tensor of negative frames is built.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


MODES = ("utterance", "batch", "speaker")


def sample_future_negatives(key: jax.Array, frames: jax.Array, num_frames: int, k: int, num_negatives: int,
                            mode: str = "utterance", speakers: jax.Array | None = None) -> jax.Array:
  """Negative frame indices for every anchor t (positive t + k), never the positive.

  Args:
    frames: [B] valid frames per utterance. num_frames: T.
    mode: "utterance": frames of the same utterance, uniform over its valid frames other than
      t + k; "batch": any valid frame of any utterance other than the positive (CPC_audio's
      default sampling over the batch), as flat indices b * T + t; "speaker": any valid frame
      of the batch's utterances by the anchor's speaker (its own included) other than the
      positive, flat (the paper's "same speaker" sampling, its best for phone probes).
    speakers: [B] int speaker ids, for "speaker".

  Returns:
    [B, T - k, N] int32 indices (per utterance, or flat for "batch" and "speaker").
  """
  b = frames.shape[0]
  t = num_frames - k
  pos = jnp.arange(k, num_frames)[None, :, None]  # [1, T-k, 1]
  u = jax.random.uniform(key, (b, t, num_negatives))
  if mode == "utterance":
    n = jnp.maximum(frames - 1, 1)[:, None, None]
    draw = jnp.floor(u * n).astype(jnp.int32)
    return jnp.minimum(draw + (draw >= pos), jnp.maximum(frames - 1, 0)[:, None, None])
  if mode not in MODES:
    raise ValueError(f"method.negatives: expected one of {list(MODES)}, got {mode!r}")
  valid = (jnp.arange(num_frames)[None, :] < frames[:, None]).reshape(-1)
  flat_pos = jnp.arange(b)[:, None, None] * num_frames + pos
  if mode == "speaker":
    if speakers is None:
      raise ValueError("sample_future_negatives: mode 'speaker' expected speakers [B], got None")
    # valid frames sorted by speaker: each speaker's frames are one contiguous run [start, start + count)
    spk = jnp.repeat(speakers.astype(jnp.int32), num_frames)
    order = jnp.argsort(jnp.where(valid, spk, jnp.iinfo(jnp.int32).max), stable=True)
    where = jnp.argsort(order)  # flat index -> position in `order`
    same = speakers[:, None] == speakers[None, :]
    count = jnp.sum(jnp.where(same, frames[None, :], 0), 1)[:, None, None]
    start = jnp.sum(jnp.where(speakers[None, :] < speakers[:, None], frames[None, :], 0), 1)[:, None, None]
    pos_rank = where[flat_pos] - start
    draw = jnp.floor(u * jnp.maximum(count - 1, 1)).astype(jnp.int32)
    draw = jnp.minimum(draw + (draw >= pos_rank), jnp.maximum(count - 1, 0))
    return order[start + draw].astype(jnp.int32)
  # the valid frames of the batch in flat order: rank r -> flat index, skipping the positive's rank
  order = jnp.argsort(~valid, stable=True)
  rank = jnp.cumsum(valid) - 1
  total = jnp.sum(valid)
  pos_rank = rank[flat_pos]
  draw = jnp.floor(u * jnp.maximum(total - 1, 1)).astype(jnp.int32)
  draw = jnp.minimum(draw + (draw >= pos_rank), jnp.maximum(total - 1, 0))
  return order[draw].astype(jnp.int32)


def cpc_loss(predictions: jax.Array, z: jax.Array, valid: jax.Array, negatives: list[jax.Array],
             mode: str = "utterance") -> tuple[jax.Array, dict[str, jax.Array]]:
  """CPC's InfoNCE, mean over the steps k = 1..K.

  Args:
    predictions: [K, B, T, C] W_k c_t. z: [B, T, C] encoder frames. valid: [B, T] bool.
    negatives: K arrays [B, T - k, N] from `sample_future_negatives` (same `mode`; "batch" and
      "speaker" index the batch's flat frames).

  Returns:
    (loss, {"accuracy": positive scored above every negative, mean over k; "accuracy_k<k>"}).
  """
  num_steps, b, t, _ = predictions.shape
  z = z.astype(jnp.float32)
  losses, aux = [], {}
  for i in range(num_steps):
    k = i + 1
    pred = predictions[i, :, : t - k].astype(jnp.float32)
    if mode in ("batch", "speaker"):
      scores = jnp.einsum("btc,nc->btn", pred, z.reshape(b * t, -1))  # [B, T-k, B*T]
      pos_idx = jnp.arange(b)[:, None] * t + jnp.arange(k, t)[None, :]
    else:
      scores = jnp.einsum("btc,bsc->bts", pred, z)  # [B, T-k, T]
      pos_idx = jnp.broadcast_to(jnp.arange(k, t)[None, :], (b, t - k))
    pos = jnp.take_along_axis(scores, pos_idx[..., None], -1)
    neg = jnp.take_along_axis(scores, negatives[i], -1)
    logits = jnp.concatenate([pos, neg], -1)
    nll = -jax.nn.log_softmax(logits, -1)[..., 0]
    w = valid[:, k:].astype(jnp.float32)
    n = jnp.maximum(jnp.sum(w), 1.0)
    losses.append(jnp.sum(nll * w) / n)
    aux[f"accuracy_k{k}"] = jnp.sum((jnp.argmax(logits, -1) == 0) * w) / n
  aux["accuracy"] = jnp.mean(jnp.stack([aux[f"accuracy_k{i + 1}"] for i in range(num_steps)]))
  return jnp.mean(jnp.stack(losses)), aux
