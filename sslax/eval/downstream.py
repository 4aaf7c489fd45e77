"""Held-out accuracy of a downstream head (sequence classification, token tagging), and for IOB
tags conlleval's entity F1."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sslax.data.pipeline import eval_batches, from_full_batch, pad_rows
from sslax.eval.finetune import entity_f1
from sslax.models.functional import merge_model


def predictions(method, state, mesh, source, *, batch_size: int = 256):
  """(labels, predictions) of every example of `source`, through `method.logits`; for per-token
  labels one array per sentence holding its tokens with a target (-1 marks none)."""
  keys, label_key = method.inputs.keys, method.label_key

  def fn(params, batch_stats, inputs, graphdef):
    return jnp.argmax(method.logits(merge_model(graphdef, params, batch_stats), inputs), -1)

  predict = jax.jit(fn, static_argnums=(3,), out_shardings=NamedSharding(mesh, PartitionSpec()))
  n_dev = mesh.devices.size
  labels, preds = [], []
  for batch in eval_batches(source, batch_size=max(n_dev, batch_size // n_dev * n_dev),
                            transform=method.inputs.transform()):
    m = len(batch[label_key])
    inputs = {k: from_full_batch(pad_rows(batch[k], n_dev), mesh) for k in keys}
    pred = np.asarray(jax.device_get(predict(state.params, state.batch_stats, inputs, state.graphdef)))[:m]
    labels += list(np.asarray(batch[label_key]))
    preds += list(pred)
  if method.per_token:  # per sentence, the tags of its words
    return [y[y >= 0] for y in labels], [p[y >= 0] for y, p in zip(labels, preds)]
  return [np.asarray(labels)], [np.asarray(preds)]


def accuracy(labels, preds) -> float:
  return sum(int(np.sum(y == p)) for y, p in zip(labels, preds)) / max(sum(len(y) for y in labels), 1)


@dataclasses.dataclass(frozen=True)
class HeldoutAccuracy:
  """Evaluator: "top1" on the run's eval split (of the tokens with a target, for tagging),
  "train_top1" on its train split; tagging adds "num_tagged_tokens", and "entity_f1" when
  `finetune.tag_names` are IOB tags (B-X / I-X / O)."""
  monitor: bool = True

  def __call__(self, run) -> dict[str, float]:
    if run.data.heldout is None:
      return {}
    method = run.method
    held_out = predictions(method, run.state, run.mesh, run.data.heldout)
    out = {"top1": accuracy(*held_out)}
    if run.monitor:
      return out
    if run.data.train is not None:
      out["train_top1"] = accuracy(*predictions(method, run.state, run.mesh, run.data.train))
    if method.per_token:
      out["num_tagged_tokens"] = int(sum(len(y) for y in held_out[0]))
      tag_names = run.config.finetune.get("tag_names")
      if tag_names and any(t[:2] in ("B-", "I-") for t in tag_names):
        names = np.asarray(list(tag_names))
        out["entity_f1"] = entity_f1([names[y] for y in held_out[0]], [names[p] for p in held_out[1]])
    return out
