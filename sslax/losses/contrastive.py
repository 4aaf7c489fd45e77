"""Contrastive losses: InfoNCE and NT-Xent, pure functions of arrays.

Under `jax.jit` with the batch sharded over a mesh, the arrays here are
global: the similarity matrix spans the whole global batch, so every example
sees the 2N-2 negatives of all devices without a hand-written all-gather.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.losses.blockwise import blockwise_logsumexp


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """`x / max(||x||_2, eps)` along `axis`, as torch.nn.functional.normalize.

  The squared norm is clamped before the square root: sqrt's derivative at 0 is infinite, so
  clamping after it gives an all-zero row NaN gradients (0 * inf), where PyTorch's are finite
  (the upstream gradient / eps). The sum runs in at least float32, so eps^2 does not underflow.

  Examples:
    >>> import jax.numpy as jnp
    >>> [round(float(v), 4) for v in l2_normalize(jnp.array([[3.0, 4.0]]))[0]]
    [0.6, 0.8]
  """
  sq = jnp.sum(jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32))), axis=axis, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, eps * eps)).astype(x.dtype)


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
    z1: jax.Array, z2: jax.Array, *, temperature: float = 0.1, block_size: int | None = None
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
    block_size: None for the dense [2N, 2N] similarity matrix; an int to
      compute it `block_size` columns at a time (`blockwise_logsumexp`):
      the same loss and gradients with O(2N x block_size) memory.

  Returns:
    (scalar loss averaged over all 2N anchors, aux dict with "accuracy" of
    picking the positive among 2N-1 candidates and "positive_similarity").

  Examples:
    Four one-hot embeddings, each view equal to its pair: the positive's cosine is 1, the six
    negatives' 0, so the loss is log(e^10 + 6) - 10 at temperature 0.1.

    >>> import jax.numpy as jnp
    >>> z = jnp.eye(4)
    >>> loss, aux = nt_xent_loss(z, z, temperature=0.1)
    >>> round(float(loss), 4), float(aux["accuracy"])
    (0.0003, 1.0)
  """
  if z1.shape != z2.shape or z1.ndim != 2:
    raise ValueError(f"z1, z2: expected two [N, D] arrays of equal shape, got {z1.shape} and {z2.shape}")
  n = z1.shape[0]
  z = l2_normalize(jnp.concatenate([z1, z2], axis=0).astype(jnp.float32))
  idx = jnp.arange(2 * n)
  positive_index = (idx + n) % (2 * n)
  if block_size is not None:
    lse, _, argmax = blockwise_logsumexp(z, z, temperature=temperature, block_size=block_size, exclude_self=True)
    positive = jnp.sum(z * jnp.roll(z, n, axis=0), axis=1) / temperature
    loss = jnp.mean(lse - positive)
    aux = {"accuracy": jnp.mean((argmax == positive_index).astype(jnp.float32))}
  else:
    not_self = idx[:, None] != idx[None, :]
    loss, aux = info_nce_loss(z @ z.T / temperature, positive_index, valid=not_self)
  aux["positive_similarity"] = jnp.mean(jnp.sum(z[:n] * z[n:], axis=1))
  return loss, aux


def moco_loss(q: jax.Array, k: jax.Array, queue: jax.Array, *, temperature: float = 0.2,
              block_size: int | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
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
    block_size: None (dense [N, K+1] logits) or queue entries per block
      (`blockwise_logsumexp`; same loss and gradients, O(N x block) memory).

  Returns: (mean loss, {"accuracy": fraction of queries ranking their key first}).
  """
  q = l2_normalize(q.astype(jnp.float32))
  k = jax.lax.stop_gradient(l2_normalize(k.astype(jnp.float32)))
  queue = jax.lax.stop_gradient(queue.astype(jnp.float32))
  positive = jnp.sum(q * k, axis=1, keepdims=True)
  if block_size is not None:
    positive = positive[:, 0] / temperature
    lse_queue, max_queue, _ = blockwise_logsumexp(q, queue, temperature=temperature, block_size=block_size)
    loss = jnp.mean(jnp.logaddexp(positive, lse_queue) - positive)
    # Dense argmax picks column 0 (the key) on a tie.
    return loss, {"accuracy": jnp.mean((positive >= max_queue).astype(jnp.float32))}
  logits = jnp.concatenate([positive, q @ queue.T], axis=1) / temperature
  return info_nce_loss(logits, jnp.zeros(q.shape[0], jnp.int32))


def moco_v3_loss(q1: jax.Array, q2: jax.Array, k1: jax.Array, k2: jax.Array, *, temperature: float = 0.2,
                 block_size: int | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """MoCo v3's symmetrized in-batch InfoNCE, no queue.

  Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision
  Transformers" (ICCV 2021), Algorithm 1: ctr(q1, k2) + ctr(q2, k1) with
  ctr(q, k) = CE(q k^T / T, arange(N)) * 2T. Keys of the whole global batch
  are the negatives.

  Args: q1, q2 [N, D] online predictions of views 1 and 2; k1, k2 [N, D]
  momentum-encoder projections (gradients stopped); block_size as in
  `nt_xent_loss`. Returns (loss, aux).
  """
  def ctr(q, k):
    q = l2_normalize(q.astype(jnp.float32))
    k = jax.lax.stop_gradient(l2_normalize(k.astype(jnp.float32)))
    loss, aux = _paired_info_nce(q, k, 1.0 / temperature, block_size)
    return loss * 2 * temperature, aux["accuracy"]

  l12, a12 = ctr(q1, k2)
  l21, a21 = ctr(q2, k1)
  return l12 + l21, {"accuracy": (a12 + a21) / 2}


def _paired_info_nce(a: jax.Array, b: jax.Array, scale, block_size: int | None):
  """Cross-entropy of logits scale * a @ b.T against the diagonal; dense or blockwise."""
  target = jnp.arange(a.shape[0])
  if block_size is None:
    return info_nce_loss(scale * (a @ b.T), target)
  # The scale multiplies the anchors so a learned (traced) scale gets its gradient.
  lse, _, argmax = blockwise_logsumexp(a * scale, b, temperature=1.0, block_size=block_size)
  loss = jnp.mean(lse - scale * jnp.sum(a * b, axis=1))
  return loss, {"accuracy": jnp.mean((argmax == target).astype(jnp.float32))}


def check_paired(image: jax.Array, text: jax.Array) -> None:
  """Paired embeddings of two modalities: two [N, D] arrays of one shape (row i pairs with row i)."""
  if image.shape != text.shape or image.ndim != 2:
    raise ValueError(f"image, text: expected two [N, D] arrays of equal shape, got {image.shape} and {text.shape}")


def clip_loss(image: jax.Array, text: jax.Array, *, logit_scale, block_size: int | None = None
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """CLIP's symmetric InfoNCE between paired embeddings of two modalities.

  Radford et al., "Learning Transferable Visual Models From Natural Language
  Supervision" (ICML 2021), Figure 3: logits = scale * norm(I) norm(T)^T,
  loss = (CE(logits, arange) + CE(logits.T, arange)) / 2 over the global
  batch, as open_clip's `ClipLoss` on one device (or with gathered features).

  Args:
    image: [N, D] image embeddings; text: [N, D] text embeddings (row i pairs
      with row i). l2-normalized here, computed in float32.
    logit_scale: 1 / temperature, a float or a scalar array (CLIP learns
      log(scale); its gradient flows through here in both forms).
    block_size: None (dense [N, N] logits) or columns per block
      (`blockwise_logsumexp`; same loss and gradients, O(N x block) memory).

  Returns: (loss, {"accuracy": mean of image->text and text->image top-1}).
  """
  check_paired(image, text)
  image = l2_normalize(image.astype(jnp.float32))
  text = l2_normalize(text.astype(jnp.float32))
  l_it, a_it = _paired_info_nce(image, text, logit_scale, block_size)
  l_ti, a_ti = _paired_info_nce(text, image, logit_scale, block_size)
  return (l_it + l_ti) / 2, {"accuracy": (a_it["accuracy"] + a_ti["accuracy"]) / 2}
