"""Frozen features of a whole split, computed with the sharded model in evaluation mode."""
from __future__ import annotations

import contextlib

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.data.pipeline import eval_batches, from_full_batch, pad_rows
from sslax.models.functional import merge_model
from sslax.models.sharding import batch_sharded


def make_feature_fn(method, mesh: Mesh, features=None, *, constrain_activations: bool = False):
  """Returns jitted `fn(params, batch_stats, inputs, graphdef) -> [B, D]` sharded over the batch,
  `inputs` a dict of the method's input entries (e.g. {"image": [B, H, W, C]}). `features(model,
  inputs)` is what it computes: `method.features` unless given (a head's predictions).
  `constrain_activations`: layer outputs stay split along the batch, as in the train step under
  FSDP (`sslax.models.sharding`), so that split weights are gathered, not activations resharded."""
  features = features or method.features

  def fn(params, batch_stats, inputs, graphdef):
    with batch_sharded(mesh) if constrain_activations else contextlib.nullcontext():
      return features(merge_model(graphdef, params, batch_stats), inputs)

  replicated = NamedSharding(mesh, P())
  # inputs come sharded over the batch; params keep the train state's layout (replicated, or
  # split by sharding.rules), so only the output is pinned: replicated, readable by every process
  return jax.jit(fn, static_argnums=(3,), out_shardings=replicated)


def extract_features_and_labels(method, state, source, mesh: Mesh, *, label_keys=("label",), batch_size: int = 512,
                                transform=None, feature_fn=None, keys=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Runs the encoder over every example of `source`: ([N, D] float32, {key: [N] int32} for `label_keys`).

  Records go through `transform`, by default the method's `inputs.transform(label_keys)`; `keys`
  are the entries the features read (default `method.inputs.keys`; `method.probe_inputs.keys`
  for labelled probe images of an image-text method).

  Batches are padded to a multiple of the device count and the padding is
  dropped, so every example is used exactly once.
  """
  fn = feature_fn or make_feature_fn(method, mesh)
  n_dev = mesh.devices.size
  batch_size = max(n_dev, batch_size // n_dev * n_dev)
  keys = keys or method.inputs.keys
  transform = transform or method.inputs.transform(label_keys)
  feats, labels = [], {k: [] for k in label_keys}
  for batch in eval_batches(source, batch_size=batch_size, transform=transform):
    n = len(batch[keys[0]])
    inputs = {k: from_full_batch(pad_rows(batch[k], n_dev), mesh) for k in keys}
    out = fn(state.params, state.batch_stats, inputs, state.graphdef)
    feats.append(np.asarray(jax.device_get(out))[:n])
    for k in label_keys:
      labels[k].append(np.asarray(batch[k]))
  if not feats:
    raise ValueError("data: the evaluation split is empty (expected at least one example)")
  return (np.concatenate(feats).astype(np.float32),
          {k: np.concatenate(v).astype(np.int32) for k, v in labels.items()})


def extract_features(method, state, source, mesh: Mesh, *, batch_size: int = 512, transform=None,
                     feature_fn=None) -> tuple[np.ndarray, np.ndarray]:
  """([N, D] float32 features, [N] int32 labels) of every example of `source`."""
  x, y = extract_features_and_labels(method, state, source, mesh, batch_size=batch_size, transform=transform,
                                     feature_fn=feature_fn)
  return x, y["label"]
