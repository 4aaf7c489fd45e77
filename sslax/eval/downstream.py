"""Held-out accuracy of a downstream head (sequence classification, token tagging), and for IOB
tags conlleval's entity F1."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from sslax.eval.features import extract_features_and_labels, make_feature_fn
from sslax.eval.finetune import entity_f1


def predictions(method, state, mesh, source, *, batch_size: int = 256):
  """(labels, predictions) of every example of `source`, through `method.logits`; for per-token
  labels one array per sentence holding its tokens with a target (-1 marks none)."""
  predict = make_feature_fn(method, mesh, features=lambda model, inputs: jnp.argmax(method.logits(model, inputs), -1))
  preds, labels = extract_features_and_labels(method, state, source, mesh, label_keys=(method.label_key,),
                                              batch_size=batch_size, transform=method.inputs.transform(),
                                              feature_fn=predict)
  preds, labels = preds.astype(np.int32), labels[method.label_key]
  if method.per_token:  # per sentence, the tags of its words
    return [y[y >= 0] for y in labels], [p[y >= 0] for y, p in zip(labels, preds)]
  return [labels], [preds]


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
