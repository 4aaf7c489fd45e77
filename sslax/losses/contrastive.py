"""Contrastive losses: InfoNCE and NT-Xent, pure functions of arrays.

Under `jax.jit` with the batch sharded over a mesh, the arrays here are
global: the similarity matrix spans the whole global batch, so every example
sees the 2N-2 negatives of all devices without a hand-written all-gather.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """Divides `x` by its L2 norm along `axis` (as torch.nn.functional.normalize)."""
  norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
  return x / jnp.maximum(norm, eps)


def info_nce_loss(
    logits: jax.Array,
    positive_index: jax.Array,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """InfoNCE / softmax cross-entropy of each row against its positive column.

  van den Oord et al., "Representation Learning with Contrastive Predictive
  Coding" (2018), eq. 4.

  Args:
    logits: [N, M] similarity scores already divided by the temperature.
    positive_index: [N] int, the column of each row's positive.
    valid: optional [N, M] bool; False entries are excluded from the
      denominator (e.g. self-similarity). The positive must be valid.

  Returns:
    (mean loss over rows, {"accuracy": fraction of rows whose positive has the
    highest logit}). The log-sum-exp is computed stably in float32.
  """
  if logits.ndim != 2:
    raise ValueError(f"logits: expected rank 2 [N, M], got shape {logits.shape}")
  logits = logits.astype(jnp.float32)
  if valid is not None:
    logits = jnp.where(valid, logits, -jnp.inf)
  positive = jnp.take_along_axis(logits, positive_index[:, None], axis=1)[:, 0]
  loss = jax.nn.logsumexp(logits, axis=1) - positive
  accuracy = jnp.mean((jnp.argmax(logits, axis=1) == positive_index).astype(jnp.float32))
  return jnp.mean(loss), {"accuracy": accuracy}


def nt_xent_loss(
    z1: jax.Array, z2: jax.Array, *, temperature: float = 0.1
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR.

  Chen et al., "A Simple Framework for Contrastive Learning of Visual
  Representations" (ICML 2020), eq. 1. For each of the 2N embeddings the
  positive is the other view of the same example and the negatives are the
  other 2N-2 embeddings of the (global) batch; self-similarity is excluded.
  Equal to solo-learn's `simclr_loss_func` and lightly's `NTXentLoss`
  (without a memory bank).

  Args:
    z1: [N, D] projections of the first view.
    z2: [N, D] projections of the second view (row i pairs with z1[i]).
    temperature: tau > 0; similarities are cosine similarities / tau.

  Returns:
    (scalar loss averaged over all 2N anchors, aux dict with "accuracy" of
    picking the positive among 2N-1 candidates and "positive_similarity").
  """
  if z1.shape != z2.shape or z1.ndim != 2:
    raise ValueError(f"z1, z2: expected two [N, D] arrays of equal shape, got {z1.shape} and {z2.shape}")
  n = z1.shape[0]
  z = l2_normalize(jnp.concatenate([z1, z2], axis=0).astype(jnp.float32))
  logits = z @ z.T / temperature
  idx = jnp.arange(2 * n)
  positive_index = (idx + n) % (2 * n)
  not_self = idx[:, None] != idx[None, :]
  loss, aux = info_nce_loss(logits, positive_index, valid=not_self)
  aux["positive_similarity"] = jnp.mean(jnp.sum(z[:n] * z[n:], axis=1))
  return loss, aux


def moco_loss(q: jax.Array, k: jax.Array, queue: jax.Array, *, temperature: float = 0.2
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """MoCo's InfoNCE of queries against their key and a queue of past keys.

  He et al., "Momentum Contrast for Unsupervised Visual Representation
  Learning" (CVPR 2020), eq. 1; v2 (Chen et al. 2020) only changes the head
  and augmentations. As the reference code and solo-learn's
  `moco_loss_func`: logits = [q.k, q.queue] / T, cross-entropy with the key
  at column 0.

  Args:
    q: [N, D] queries (online encoder); l2-normalized here.
    k: [N, D] keys of the same images, other view (momentum encoder);
      l2-normalized here, gradients stopped.
    queue: [K, D] past keys (already normalized), gradients stopped.
    temperature: T > 0.

  Returns: (mean loss, {"accuracy": fraction of queries ranking their key first}).
  """
  q = l2_normalize(q.astype(jnp.float32))
  k = jax.lax.stop_gradient(l2_normalize(k.astype(jnp.float32)))
  queue = jax.lax.stop_gradient(queue.astype(jnp.float32))
  positive = jnp.sum(q * k, axis=1, keepdims=True)
  logits = jnp.concatenate([positive, q @ queue.T], axis=1) / temperature
  return info_nce_loss(logits, jnp.zeros(q.shape[0], jnp.int32))


def moco_v3_loss(q1: jax.Array, q2: jax.Array, k1: jax.Array, k2: jax.Array, *, temperature: float = 0.2
                 ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """MoCo v3's symmetrized in-batch InfoNCE, no queue.

  Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision
  Transformers" (ICCV 2021), Algorithm 1: ctr(q1, k2) + ctr(q2, k1) with
  ctr(q, k) = CE(q k^T / T, arange(N)) * 2T. Keys of the whole global batch
  are the negatives.

  Args: q1, q2 [N, D] online predictions of views 1 and 2; k1, k2 [N, D]
  momentum-encoder projections (gradients stopped). Returns (loss, aux).
  """
  def ctr(q, k):
    q = l2_normalize(q.astype(jnp.float32))
    k = jax.lax.stop_gradient(l2_normalize(k.astype(jnp.float32)))
    loss, aux = info_nce_loss(q @ k.T / temperature, jnp.arange(q.shape[0]))
    return loss * 2 * temperature, aux["accuracy"]

  l12, a12 = ctr(q1, k2)
  l21, a21 = ctr(q2, k1)
  return l12 + l21, {"accuracy": (a12 + a21) / 2}
