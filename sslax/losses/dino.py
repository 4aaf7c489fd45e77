"""DINO's self-distillation loss and its teacher-centering update.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers"
(ICCV 2021), Sec. 3.1 and Algorithm 1, as the reference `DINOLoss`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def dino_loss(student_logits: jax.Array, teacher_logits: jax.Array, center: jax.Array, *,
              student_temperature: float = 0.1, teacher_temperature: float | jax.Array = 0.04
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Cross-entropy H(P_t(teacher view), P_s(student view)) over all pairs of different views.

  P_t = softmax((t - center) / teacher_temperature) with gradients stopped,
  P_s = log_softmax(s / student_temperature). The student views are ordered
  with the teacher's (global) views first, so pair (i, i) with i < V_t is the
  same view and is skipped. The loss is the mean over the V_t * V_s - V_t
  pairs of the batch-mean cross-entropy.

  Args:
    student_logits: [V_s, N, K] head outputs for every student view (global then local).
    teacher_logits: [V_t, N, K] teacher head outputs for the global views.
    center: [K] running center of the teacher outputs.

  Returns: (loss, {"teacher_entropy", "kl"}): the mean entropy of P_t (low = sharp)
  and the mean KL(P_t || P_s) over the pairs.
  """
  vt, vs = teacher_logits.shape[0], student_logits.shape[0]
  if vs < 2 or vt > vs or teacher_logits.shape[1:] != student_logits.shape[1:]:
    raise ValueError(f"dino_loss: expected teacher [V_t, N, K] and student [V_s >= V_t, N, K] with V_s >= 2, "
                     f"got {teacher_logits.shape} and {student_logits.shape}")
  t = jax.lax.stop_gradient(teacher_logits.astype(jnp.float32) - center)
  p_t = jax.nn.softmax(t / teacher_temperature, axis=-1)
  log_p_s = jax.nn.log_softmax(student_logits.astype(jnp.float32) / student_temperature, axis=-1)
  # ce[i, j] = batch mean of -sum_k P_t(view i) log P_s(view j)
  ce = -jnp.einsum("ink,jnk->ij", p_t, log_p_s) / t.shape[1]
  pairs = jnp.arange(vt)[:, None] != jnp.arange(vs)[None, :]
  loss = jnp.sum(jnp.where(pairs, ce, 0.0)) / jnp.sum(pairs)
  entropy = -jnp.mean(jnp.sum(p_t * jnp.log(p_t + 1e-20), axis=-1))
  return loss, {"teacher_entropy": entropy, "kl": loss - entropy}


def dino_center_update(center: jax.Array, teacher_logits: jax.Array, *, momentum: float = 0.9) -> jax.Array:
  """center <- m * center + (1 - m) * mean of the teacher outputs over views and the global batch.

  Args: center [K]; teacher_logits [V_t, N, K] (raw, before centering and temperature).
  """
  batch_center = jnp.mean(jax.lax.stop_gradient(teacher_logits).astype(jnp.float32), axis=(0, 1))
  return center * momentum + batch_center * (1 - momentum)


def teacher_temperature_schedule(step, *, warmup_temperature: float = 0.04, temperature: float = 0.04,
                                 warmup_steps: int = 0):
  """Linear warm-up of the teacher temperature (DINO's `warmup_teacher_temp`), then constant."""
  if warmup_steps <= 0:
    return jnp.asarray(temperature, jnp.float32)
  frac = jnp.clip(step / warmup_steps, 0.0, 1.0)
  return warmup_temperature + frac * (temperature - warmup_temperature)
