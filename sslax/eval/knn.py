"""Weighted k-nearest-neighbour classification of frozen features (Wu et al. 2018; solo-learn)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sslax.eval.context import label_prefix


def knn_predict(train_x, train_y, test_x, *, num_classes: int, k: int = 200, temperature: float = 0.07,
                chunk: int = 1024) -> np.ndarray:
  """Cosine-similarity kNN with votes weighted by exp(sim / temperature), as solo-learn's
  `WeightedKNNClassifier`. Returns [N_test] predicted labels."""
  train = jnp.asarray(train_x, jnp.float32)
  train = train / jnp.maximum(jnp.linalg.norm(train, axis=1, keepdims=True), 1e-12)
  labels = jnp.asarray(train_y, jnp.int32)
  k = min(k, train.shape[0])

  @jax.jit
  def predict(q):
    q = q / jnp.maximum(jnp.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    sim, idx = jax.lax.top_k(q @ train.T, k)
    votes = jax.nn.one_hot(labels[idx], num_classes) * jnp.exp(sim / temperature)[..., None]
    return jnp.argmax(votes.sum(1), axis=-1)

  test = np.asarray(test_x, np.float32)
  return np.concatenate([np.asarray(predict(jnp.asarray(test[i:i + chunk])))
                         for i in range(0, len(test), chunk)])


def knn_accuracy(train_x, train_y, test_x, test_y, *, k: int = 200, temperature: float = 0.07) -> float:
  """Top-1 of `knn_predict` on the test split."""
  num_classes = int(max(np.max(train_y), np.max(test_y))) + 1
  pred = knn_predict(train_x, train_y, test_x, num_classes=num_classes, k=k, temperature=temperature)
  return float(np.mean(pred == np.asarray(test_y)))


@dataclasses.dataclass(frozen=True)
class KNN:
  """Evaluator: weighted kNN top-1 (`eval.knn_k`, `eval.knn_temperature`) of the frozen features
  on the probe test split, for "label" and each of `eval.extra_labels`."""
  monitor: bool = True

  def __call__(self, run) -> dict[str, float]:
    if run.data.probe_train is None:
      return {}
    train_x, train_y, test_x, test_y = run.probe_features()
    c = run.config.eval
    return {f"{label_prefix(k)}knn_top1": knn_accuracy(train_x, train_y[k], test_x, test_y[k], k=c.knn_k,
                                                         temperature=c.knn_temperature)
            for k in run.label_keys}
