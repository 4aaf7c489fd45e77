"""Frozen features of a whole split, computed with the sharded model in evaluation mode."""
from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.data.pipeline import data_sharding, eval_batches


def make_feature_fn(method, mesh: Mesh):
  """Returns jitted `fn(params, batch_stats, graphdef, images) -> [B, D]` sharded over the batch."""

  def fn(params, batch_stats, images, graphdef):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    return method.features(model, images)

  replicated = NamedSharding(mesh, P())
  return jax.jit(fn, static_argnums=(3,), in_shardings=(replicated, replicated, data_sharding(mesh)),
                 out_shardings=replicated)


def extract_features(method, state, source, mesh: Mesh, *, batch_size: int = 512,
                     image_size=None, feature_fn=None) -> tuple[np.ndarray, np.ndarray]:
  """Runs the encoder over every example of `source`: ([N, D] float32, [N] int32 labels).

  Batches are padded to a multiple of the device count and the padding is
  dropped, so every example is used exactly once.
  """
  fn = feature_fn or make_feature_fn(method, mesh)
  n_dev = mesh.devices.size
  batch_size = max(n_dev, batch_size // n_dev * n_dev)
  feats, labels = [], []
  for batch in eval_batches(source, batch_size=batch_size, image_size=image_size):
    images = np.asarray(batch["image"])
    n = len(images)
    pad = (-n) % n_dev
    if pad:
      images = np.concatenate([images, np.repeat(images[-1:], pad, axis=0)])
    images = jax.make_array_from_process_local_data(data_sharding(mesh), images)
    out = fn(state.params, state.batch_stats, images, state.graphdef)
    feats.append(np.asarray(jax.device_get(out))[:n])
    labels.append(np.asarray(batch["label"]))
  if not feats:
    raise ValueError("data: the evaluation split is empty (expected at least one example)")
  return np.concatenate(feats).astype(np.float32), np.concatenate(labels).astype(np.int32)
