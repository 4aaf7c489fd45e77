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
