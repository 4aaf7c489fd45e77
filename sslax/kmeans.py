"""k-means on device: k-means++ seeding and Lloyd iterations in one jitted program.

HuBERT's targets (Hsu et al. 2021) are k-means clusters of frames; fairseq
runs scikit-learn's `MiniBatchKMeans` offline between iterations. Here the
frames stay on the accelerator: the points may be sharded over the mesh's
data axis (the assignment and the per-cluster sums are matmuls that XLA
reduces across devices) and the result is the same on any device count. No
JAX library ships k-means (scikit-learn's is NumPy on the host).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def sq_distances(x: jax.Array, centroids: jax.Array) -> jax.Array:
  """||x_i - c_k||^2 [N, K] of x [N, D] and centroids [K, D], clamped at 0."""
  d = jnp.sum(x * x, -1, keepdims=True) - 2.0 * x @ centroids.T + jnp.sum(centroids * centroids, -1)[None, :]
  return jnp.maximum(d, 0.0)


def assign(x: jax.Array, centroids: jax.Array) -> jax.Array:
  """Index [N] int32 of each point's nearest centroid."""
  return jnp.argmin(sq_distances(x, centroids), axis=-1).astype(jnp.int32)


def _plus_plus(key, x, w, k):
  """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability
  proportional to the (weighted) squared distance to the nearest centre so far."""
  n = x.shape[0]
  keys = jax.random.split(key, k)
  first = jax.random.choice(keys[0], n, p=w / jnp.sum(w))
  centroids = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
  nearest = jnp.sum(jnp.square(x - x[first]), -1)

  def body(i, carry):
    centroids, nearest = carry
    p = w * nearest
    p = jnp.where(jnp.sum(p) > 0, p / jnp.maximum(jnp.sum(p), 1e-30), w / jnp.sum(w))
    pick = jax.random.choice(keys[i], n, p=p)
    centroids = centroids.at[i].set(x[pick])
    return centroids, jnp.minimum(nearest, jnp.sum(jnp.square(x - x[pick]), -1))

  return jax.lax.fori_loop(1, k, body, (centroids, nearest))[0]


def split_empty(key: jax.Array, centroids: jax.Array, counts: jax.Array, eps: float = 1e-3) -> jax.Array:
  """DeepCluster's (faiss') empty-cluster rule: every centroid that won no point [K] moves next to
  the centroid of the largest cluster, c * (1 + eps * s) with s a random sign vector per empty
  cluster, so the next assignment splits that cluster. The other centroids stay."""
  empty = counts <= 0
  big = centroids[jnp.argmax(counts)]
  signs = jnp.where(jax.random.bernoulli(key, 0.5, centroids.shape), 1.0, -1.0)
  return jnp.where(empty[:, None], big[None, :] * (1.0 + eps * signs), centroids)


@partial(jax.jit, static_argnames=("k", "iters", "split_empty_clusters"))
def kmeans(key: jax.Array, x: jax.Array, k: int, iters: int = 50, weights: jax.Array | None = None,
           split_empty_clusters: bool = False) -> tuple[jax.Array, jax.Array]:
  """Lloyd's k-means from k-means++ seeds.

  Args:
    key: the seeding's randomness.
    x: [N, D] points (float32; may be sharded over its first axis).
    k: clusters. iters: Lloyd iterations (each: assign, then move every centroid to the mean of
      its points; a centroid that loses all its points stays where it is).
    weights: [N] point weights (0: padding rows that take no part), default 1.
    split_empty_clusters: instead, a centroid that loses all its points moves next to the largest
      cluster's (`split_empty`), as DeepCluster: all k clusters stay in use.

  Returns:
    (centroids [K, D], inertia: the weighted mean squared distance to the nearest centroid).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.array([[0.0], [0.1], [10.0], [10.1]])
    >>> c, _ = kmeans(jax.random.key(0), x, 2)
    >>> sorted(round(float(v), 2) for v in c[:, 0])
    [0.05, 10.05]
  """
  x = x.astype(jnp.float32)
  w = jnp.ones((x.shape[0],), jnp.float32) if weights is None else weights.astype(jnp.float32)
  centroids = _plus_plus(key, x, w, k)
  split_key = jax.random.fold_in(key, 1)

  def step(i, centroids):
    onehot = jax.nn.one_hot(assign(x, centroids), k, dtype=jnp.float32) * w[:, None]
    counts = jnp.sum(onehot, axis=0)
    sums = onehot.T @ x
    moved = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centroids)
    return split_empty(jax.random.fold_in(split_key, i), moved, counts) if split_empty_clusters else moved

  centroids = jax.lax.fori_loop(0, iters, step, centroids)
  inertia = jnp.sum(w * jnp.min(sq_distances(x, centroids), -1)) / jnp.sum(w)
  return centroids, inertia


def purity(clusters, labels, k: int | None = None) -> float:
  """Cluster purity (NumPy): the fraction of points whose cluster's most common label is theirs."""
  return label_stats(clusters, labels, k)["purity"]


def label_stats(clusters, labels, k: int | None = None) -> dict[str, float]:
  """How well clusters z [N] follow labels y [N] (NumPy), the three measures of HuBERT's
  section IV-E with digits (or speakers) in place of phones:

  - purity: sum_z max_y P(y, z), the accuracy of labelling each cluster with its commonest label
    (the paper's "phone purity");
  - cluster_purity: sum_y max_z P(y, z), the same the other way round;
  - pnmi: I(y; z) / H(y), the fraction of the label's entropy the cluster explains.

  Examples:
    >>> s = label_stats([0, 0, 1, 1], [3, 3, 1, 2])
    >>> s["purity"], s["cluster_purity"], round(s["pnmi"], 3)
    (0.75, 1.0, 0.667)
  """
  import numpy as np

  clusters, labels = np.asarray(clusters), np.asarray(labels)
  k = int(clusters.max()) + 1 if k is None else k
  table = np.zeros((k, int(labels.max()) + 1), np.float64)
  np.add.at(table, (clusters, labels), 1)
  joint = table / max(len(clusters), 1)
  pz, py = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
  nz = joint > 0
  mutual = float(np.sum(joint[nz] * np.log(joint[nz] / (pz @ py)[nz])))
  entropy = float(-np.sum(py[py > 0] * np.log(py[py > 0])))
  return {"purity": float(joint.max(1).sum()), "cluster_purity": float(joint.max(0).sum()),
          "pnmi": mutual / entropy if entropy > 0 else 1.0}
