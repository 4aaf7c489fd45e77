"""Weighted k-nearest-neighbour classification of frozen features (Wu et al. 2018; solo-learn)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.eval.context import label_prefix


def knn_predict(train_x, train_y, test_x, *, num_classes: int, k: int = 200, temperature: float = 0.07,
                chunk: int = 1024, mesh: Mesh | None = None) -> np.ndarray:
  """Cosine-similarity kNN with votes weighted by exp(sim / temperature), as solo-learn's
  `WeightedKNNClassifier`. Returns [N_test] predicted labels.

  The training features are split by rows over every device of `mesh` (default: all devices),
  so no device holds more than N_train / devices of them (ImageNet's 1.28M x 2048 float32 is
  10 GB): each device scores a chunk of queries against its rows and keeps its own top k
  (`shard_map`), and the devices' candidates, k each, are merged by a second top k. The merged
  top k is the global one, so the prediction is the single-device computation's.
  """
  mesh = mesh if mesh is not None else Mesh(np.asarray(jax.devices()), ("data",))
  axes, shards = mesh.axis_names, mesh.devices.size
  train = np.asarray(train_x, np.float32)
  train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
  n = train.shape[0]
  k = min(k, n)
  rows = -(-n // shards)  # per device; the padding rows never win (similarity -inf)
  pad = rows * shards - n
  rows_spec = NamedSharding(mesh, P(axes))
  train = jax.device_put(np.pad(train, ((0, pad), (0, 0))), NamedSharding(mesh, P(axes, None)))
  labels = jax.device_put(np.pad(np.asarray(train_y, np.int32), (0, pad), constant_values=-1), rows_spec)
  valid = jax.device_put(np.arange(rows * shards) < n, rows_spec)
  local_k = min(k, rows)

  def local(q, tr, lab, ok):
    sim = jnp.where(ok[None], q @ tr.T, -jnp.inf)
    sim, idx = jax.lax.top_k(sim, local_k)
    return sim[None], lab[idx][None]  # [1, Q, local_k]: this device's candidates

  candidates = jax.shard_map(local, mesh=mesh, in_specs=(P(), P(axes, None), P(axes), P(axes)),
                             out_specs=(P(axes), P(axes)))

  @jax.jit
  def predict(q, train, labels, valid):  # arguments, not closed over: they span every process's devices
    q = q / jnp.maximum(jnp.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    sim, lab = candidates(q, train, labels, valid)  # [shards, Q, local_k]
    sim = jnp.moveaxis(sim, 0, 1).reshape(q.shape[0], -1)
    lab = jnp.moveaxis(lab, 0, 1).reshape(q.shape[0], -1)
    sim, idx = jax.lax.top_k(sim, k)
    votes = jax.nn.one_hot(jnp.take_along_axis(lab, idx, axis=1), num_classes) * jnp.exp(sim / temperature)[..., None]
    return jnp.argmax(votes.sum(1), axis=-1)

  test = np.asarray(test_x, np.float32)
  replicated = NamedSharding(mesh, P())
  return np.concatenate([np.asarray(jax.device_get(predict(jax.device_put(test[i:i + chunk], replicated), train,
                                                           labels, valid)))
                         for i in range(0, len(test), chunk)])


def knn_accuracy(train_x, train_y, test_x, test_y, *, k: int = 200, temperature: float = 0.07,
                 mesh: Mesh | None = None) -> float:
  """Top-1 of `knn_predict` on the test split."""
  num_classes = int(max(np.max(train_y), np.max(test_y))) + 1
  pred = knn_predict(train_x, train_y, test_x, num_classes=num_classes, k=k, temperature=temperature, mesh=mesh)
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
                                                         temperature=c.knn_temperature, mesh=run.mesh)
            for k in run.label_keys}
