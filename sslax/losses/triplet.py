"""The triplet loss with online negative mining over the global batch.

Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face
Recognition and Clustering", CVPR 2015, Sec. 3 and 3.1 (semi-hard
negatives); the batch-hard variant of Hermans, Beyer, Leibe, "In Defense of
the Triplet Loss for Person Re-Identification" (2017). Mining follows
TensorFlow Addons' `triplet_semihard_loss` and `triplet_hard_loss`; each
mined triplet's term is PyTorch's `TripletMarginLoss` (p = 2) of it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

MINING = ("semi_hard", "hard")


def pairwise_distances(x: jax.Array, squared: bool = False) -> jax.Array:
  """[M, M] Euclidean (or squared) distances between the rows of x [M, D]; the diagonal is 0 and
  the square root's gradient at 0 is taken as 0 (as TF Addons' `pairwise_distance`)."""
  x = x.astype(jnp.float32)
  sq = jnp.sum(x * x, axis=1)
  d2 = jnp.maximum(sq[:, None] - 2.0 * x @ x.T + sq[None, :], 0.0)
  d2 = d2 * (1.0 - jnp.eye(x.shape[0], dtype=d2.dtype))
  if squared:
    return d2
  zero = d2 <= 0.0
  return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, d2)))


def triplet_loss(embeddings: jax.Array, labels: jax.Array, *, margin: float = 0.2, mining: str = "semi_hard",
                 squared: bool = True, valid: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """max(d(a, p) - d(a, n) + margin, 0) over the anchors and positives of a batch, negatives mined in it.

  Rows with the same label are positives of each other (the two views of one image in the
  self-supervised form; a class or speaker where labels are given); the rest are negatives.

  - "semi_hard" (FaceNet): for every (anchor, positive) pair, the negative nearest the anchor
    among those farther than the positive (d(a, n) > d(a, p)); where there is none, the
    farthest negative. The loss is the mean over all (anchor, positive) pairs.
  - "hard" (batch-hard): for every anchor, its farthest positive and its nearest negative; the
    mean over anchors that have a positive.

  Under `jit` with the batch sharded the distance matrix spans the global batch.

  Args:
    embeddings: [M, D] (FaceNet l2-normalizes them; the caller does).
    labels: [M] int.
    margin: alpha.
    mining: one of MINING.
    squared: squared Euclidean distances (FaceNet) or plain ones (TF Addons' default).
    valid: optional [M] bool; invalid rows (padding) are neither anchors, positives nor negatives.

  Returns: (loss, {"active": fraction of mined triplets with a positive loss, "ap_distance",
  "an_distance": mean mined positive and negative distances}).
  """
  if mining not in MINING:
    raise ValueError(f"triplet_loss: mining expected one of {list(MINING)}, got {mining!r}")
  m = embeddings.shape[0]
  if labels.shape != (m,):
    raise ValueError(f"triplet_loss: expected labels of shape ({m},), got {labels.shape}")
  d = pairwise_distances(embeddings, squared=squared)
  ok = jnp.ones((m,), bool) if valid is None else valid.astype(bool)
  same = (labels[:, None] == labels[None, :]) & ok[:, None] & ok[None, :]
  positive = same & ~jnp.eye(m, dtype=bool)
  negative = ~same & ok[:, None] & ok[None, :]
  big = jnp.finfo(jnp.float32).max
  if mining == "hard":
    d_ap = jnp.max(jnp.where(positive, d, -big), axis=1)
    d_an = jnp.min(jnp.where(negative, d, big), axis=1)
    use = jnp.any(positive, axis=1) & jnp.any(negative, axis=1)
    term = jnp.maximum(d_ap - d_an + margin, 0.0)
  else:
    # each anchor's negative distances sorted (non-negatives last, as `big`): the nearest one
    # beyond d(a, p) is the first entry after d(a, p), in [M, M] memory rather than [M, M, M]
    sorted_neg = jnp.sort(jnp.where(negative, d, big), axis=1)
    after = jax.vmap(lambda row, q: jnp.searchsorted(row, q, side="right"))(sorted_neg, d)
    nearest_outside = jnp.take_along_axis(sorted_neg, jnp.minimum(after, m - 1), axis=1)
    farthest = jnp.max(jnp.where(negative, d, -big), axis=1)
    d_an = jnp.where(nearest_outside < big, nearest_outside, farthest[:, None])
    d_ap = d
    use = positive & jnp.any(negative, axis=1)[:, None]
    term = jnp.maximum(d_ap - d_an + margin, 0.0)
  count = jnp.maximum(jnp.sum(use), 1)
  mean = lambda x: jnp.sum(jnp.where(use, x, 0.0)) / count  # noqa: E731
  return mean(term), {"active": mean((term > 0).astype(jnp.float32)), "ap_distance": mean(d_ap),
                      "an_distance": mean(d_an)}
