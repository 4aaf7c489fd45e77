"""wav2vec 2.0's objective (Baevski et al., "wav2vec 2.0: A Framework for Self-Supervised Learning
of Speech Representations", NeurIPS 2020, Sec. 3.2): L = L_m + alpha L_d (+ a feature penalty).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def wav2vec2_contrastive_loss(context: jax.Array, quantized: jax.Array, negative_idx: jax.Array,
                              weights: jax.Array, *, temperature: float = 0.1):
  """L_m: identify the true quantized latent among distractors, by cosine similarity.

  For every frame t with weight w_t > 0 (a masked frame):
    -log exp(sim(c_t, q_t) / k) / sum_{q~ in {q_t} + Q_t} exp(sim(c_t, q~) / k),
  where Q_t are the frames `negative_idx[t]` of the same utterance. A
  distractor whose quantized vector equals q_t exactly is masked out (its
  logit -inf), as in fairseq's `neg_is_pos`. The mean over weighted frames.

  Args:
    context: [B, T, F] context network outputs (after the final projection).
    quantized: [B, T, F] projected quantized latents of the same frames.
    negative_idx: [B, T, K] int frame indices of the distractors.
    weights: [B, T] float, 1 at masked frames with distractors, else 0.
    temperature: kappa (0.1).

  Returns:
    (loss scalar, {"accuracy": fraction of weighted frames where the
    positive scores highest, "num_targets": sum of weights}).
  """
  context = context.astype(jnp.float32)
  quantized = quantized.astype(jnp.float32)
  negatives = jax.vmap(lambda q, i: q[i])(quantized, negative_idx)  # [B, T, K, F]
  candidates = jnp.concatenate([quantized[:, :, None], negatives], axis=2)  # [B, T, 1 + K, F]
  eps = 1e-8  # torch.cosine_similarity's
  num = jnp.einsum("btf,btkf->btk", context, candidates)
  # the product of squared norms is clamped before the square root (as torch.cosine_similarity
  # does): sqrt's derivative at 0 is infinite, so an all-zero frame would give NaN gradients
  sq = jnp.sum(jnp.square(context), axis=-1)[..., None] * jnp.sum(jnp.square(candidates), axis=-1)
  logits = num * jax.lax.rsqrt(jnp.maximum(sq, eps * eps)) / temperature
  neg_is_pos = jnp.all(negatives == quantized[:, :, None], axis=-1)  # [B, T, K]
  logits = logits.at[..., 1:].set(jnp.where(neg_is_pos, -jnp.inf, logits[..., 1:]))
  nll = -jax.nn.log_softmax(logits, axis=-1)[..., 0]
  total = jnp.sum(weights)
  loss = jnp.sum(jnp.where(weights > 0, nll, 0.0) * weights) / jnp.maximum(total, 1.0)
  correct = (jnp.argmax(logits, axis=-1) == 0).astype(jnp.float32)
  return loss, {"accuracy": jnp.sum(correct * weights) / jnp.maximum(total, 1.0), "num_targets": total}


def codebook_perplexity(probs: jax.Array, weights: jax.Array) -> jax.Array:
  """Sum over groups of the perplexity of the averaged codeword distribution.

  Args:
    probs: [N, G, V] softmax of the quantizer logits (no Gumbel noise).
    weights: [N] frames to average over.

  Returns:
    scalar sum_g exp(-sum_v p_gv log p_gv), p_g = weighted mean of probs (between G and G*V).
  """
  w = weights.astype(jnp.float32)[:, None, None]
  avg = jnp.sum(probs.astype(jnp.float32) * w, axis=0) / jnp.maximum(jnp.sum(w), 1.0)
  return jnp.sum(jnp.exp(-jnp.sum(avg * jnp.log(avg + 1e-7), axis=-1)))


def codebook_diversity_loss(perplexity: jax.Array, num_groups: int, num_vars: int) -> jax.Array:
  """L_d = (G V - perplexity) / (G V): 0 when every codeword is used equally, near 1 when one is."""
  gv = num_groups * num_vars
  return (gv - perplexity) / gv


def feature_penalty(features: jax.Array, weights: jax.Array) -> jax.Array:
  """Mean square of the feature encoder's outputs z [B, T, C] over weighted frames [B, T] (fairseq's
  `features_pen`, weight 10 in the BASE recipe)."""
  w = weights.astype(jnp.float32)
  per_frame = jnp.mean(jnp.square(features.astype(jnp.float32)), axis=-1)
  return jnp.sum(per_frame * w) / jnp.maximum(jnp.sum(w), 1.0)


def gumbel_temperature(step: jax.Array, *, start: float = 2.0, end: float = 0.5,
                       decay: float = 0.999995) -> jax.Array:
  """The quantizer's Gumbel-softmax temperature: max(start * decay ** step, end) (paper: 2 -> 0.5)."""
  # log(decay) in float64 on the host: 0.999995 is not exact in float32 (a 0.07% error at 100k steps)
  return jnp.maximum(start * jnp.exp(step.astype(jnp.float32) * math.log(decay)), end)
