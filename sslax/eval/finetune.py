"""Full fine-tuning with a classification head on few labels, from pretrained or fresh weights.

The network is the method's own (`method.features(model, inputs)` gives the
pooled [B, D] representation); a linear head on top is trained jointly with
it by AdamW with warm-up and cosine decay, cross-entropy on the labels.
Batch statistics, if any, are used in evaluation mode. As wav2vec 2.0's
fine-tuning, parameters whose path contains one of `freeze` (e.g. the
convolutional feature encoder) stay fixed.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.data.pipeline import eval_batches, from_full_batch
from sslax.data.pipeline import pad_rows
from sslax.dispatch import OneStepAhead
from sslax.models.functional import merge_model


def few_labels(labels: dict[str, np.ndarray], per_group: int, group_by: Sequence[str], seed: int = 0) -> np.ndarray:
  """Indices of `per_group` examples for each distinct combination of `group_by` labels
  (e.g. one recording per digit per speaker), drawn with `seed`."""
  keys = np.stack([labels[k] for k in group_by], axis=1)
  rng = np.random.default_rng(seed)
  chosen = []
  for combo in np.unique(keys, axis=0):
    members = np.flatnonzero(np.all(keys == combo, axis=1))
    chosen.extend(rng.choice(members, min(per_group, len(members)), replace=False))
  return np.sort(np.asarray(chosen, np.int64))


def iob_entities(tags: Sequence[str]) -> set[tuple[int, int, str]]:
  """The entities (start, end exclusive, type) of one sentence's IOB tags, as conlleval reads them:
  an entity starts at B-X, or at I-X after O or another type (so IOB1, CoNLL-2003's original
  layout, and IOB2 alike); tags without a B-/I- prefix other than O are one-word entities."""
  spans, start, kind = set(), None, None
  for i, tag in enumerate(list(tags) + ["O"]):
    prefix, _, name = tag.partition("-") if tag[:2] in ("B-", "I-") else ("", "", tag)
    continues = prefix == "I" and start is not None and name == kind
    if start is not None and not continues:
      spans.add((start, i, kind))
      start, kind = None, None
    if tag != "O" and not continues:
      start, kind = i, name
  return spans


def entity_f1(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
  """Micro-averaged entity F1 over sentences of IOB tags (CoNLL-2003's measure, conlleval)."""
  tp = n_true = n_pred = 0
  for t, p in zip(true, pred):
    et, ep = iob_entities(t), iob_entities(p)
    tp, n_true, n_pred = tp + len(et & ep), n_true + len(et), n_pred + len(ep)
  return 2 * tp / max(n_true + n_pred, 1)


def _stack(source, indices, transform, keys):
  records = [transform(source[int(i)]) for i in indices]
  return {k: np.stack([r[k] for r in records]) for k in keys}


def finetune_classifier(method, params, batch_stats, graphdef, train_source, train_indices, eval_source, mesh: Mesh,
                        *, label_key: str = "label", num_classes: int, steps: int = 300, lr: float = 1e-3,
                        weight_decay: float = 0.01, batch_size: int = 32, warmup_steps: int = 30,
                        freeze: Sequence[str] = (), train_only: Sequence[str] = (), transform=None,
                        seed: int = 0, tag_names: Sequence[str] | None = None) -> dict[str, float]:
  """Fine-tunes the network (and a new linear head) on `train_source[train_indices]`.

  Sequence classification when `label_key` holds one label per example; token classification
  (NER, tagging) when it holds one per token ([L], -1: no target, e.g. a word's later sub-words):
  the head then reads `method.token_features(model, inputs) -> [B, L, D]` and the loss and
  accuracy run over the tokens with a target only.

  Args:
    method: the pretraining method (gives `features(model, inputs) -> [B, D]`).
    params, batch_stats, graphdef: the network's state, pretrained or freshly initialized.
    train_indices: which training examples are labelled.
    num_classes: classes of `label_key`.
    transform: the per-record map; default `method.inputs.transform((label_key,))`.
    tag_names: token classification: the tag names of ids 0, 1, ...; IOB tags (B-X / I-X / O) add
      the held-out entity F1 ("entity_f1") to the report.
    freeze: substrings of parameter paths kept fixed.
    train_only: when given, only network parameters whose path contains one of these are trained
      (adapters: ("adapter", "norm")); the head is always trained.

  Returns:
    {"top1": held-out accuracy on `eval_source` (of tokens with a target, for token
    classification), "train_top1", "num_labelled", "trained_params"}.
  """
  keys = method.inputs.keys
  transform = transform or method.inputs.transform((label_key,))
  data = _stack(train_source, train_indices, transform, keys + (label_key,))
  per_token = data[label_key].ndim == 2
  n = len(train_indices)
  n_dev = mesh.devices.size
  batch_size = max(n_dev, min(batch_size, n) // n_dev * n_dev)
  model = merge_model(graphdef, params, batch_stats)
  features = method.token_features if per_token else method.features
  dim = jax.eval_shape(lambda: features(model, {k: jnp.asarray(data[k][:1]) for k in keys})).shape[-1]
  head = {"w": jnp.zeros((dim, num_classes), jnp.float32), "b": jnp.zeros((num_classes,), jnp.float32)}
  trainable = {"net": params, "head": head}

  def frozen(path) -> bool:
    name = "/".join(str(getattr(p, "key", p)) for p in path)
    if name.startswith("head"):
      return False
    return any(f in name for f in freeze) or bool(train_only) and not any(t in name for t in train_only)

  labels_mask = jax.tree_util.tree_map_with_path(lambda p, _: "frozen" if frozen(p) else "trained", trainable)
  schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(warmup_steps, steps - 1), steps)
  tx = optax.multi_transform({"trained": optax.adamw(schedule, weight_decay=weight_decay),
                              "frozen": optax.set_to_zero()}, labels_mask)
  opt_state = tx.init(trainable)

  def logits_fn(p, inputs):
    net = merge_model(graphdef, p["net"], batch_stats)
    return features(net, inputs) @ p["head"]["w"] + p["head"]["b"]

  replicated = NamedSharding(mesh, P())

  @jax.jit
  def step(p, s, inputs, y):
    def loss_fn(p):
      # -1: no target (token classification); an explicit mask, as label 0 is a real class
      has_target = (y >= 0).astype(jnp.float32)
      ce = optax.softmax_cross_entropy_with_integer_labels(logits_fn(p, inputs), jnp.maximum(y, 0))
      return jnp.sum(ce * has_target) / jnp.maximum(jnp.sum(has_target), 1.0)

    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  predict = jax.jit(lambda p, inputs: jnp.argmax(logits_fn(p, inputs), -1), out_shardings=replicated)
  trainable, opt_state = jax.device_put((trainable, opt_state), replicated)
  rng = np.random.default_rng(seed)
  order = np.empty(0, np.int64)
  ahead = OneStepAhead()  # an unbounded queue of these 8-device steps deadlocks XLA:CPU (sslax/dispatch.py)
  for _ in range(steps):
    while len(order) < batch_size:
      order = np.concatenate([order, rng.permutation(n)])
    idx, order = order[:batch_size], order[batch_size:]
    inputs = {k: from_full_batch(data[k][idx], mesh) for k in keys}
    y = from_full_batch(data[label_key][idx].astype(np.int32), mesh)
    trainable, opt_state, loss = step(trainable, opt_state, inputs, y)
    ahead(loss)

  def predictions(batches):
    """(labels, predictions) of every example (of every token with a target)."""
    labels, preds = [], []
    for batch in batches:
      m = len(batch[label_key])
      inputs = {k: from_full_batch(pad_rows(batch[k], n_dev), mesh) for k in keys}
      pred = np.asarray(jax.device_get(predict(trainable, inputs)))[:m]
      labels += list(batch[label_key])
      preds += list(pred)
    if per_token:  # per sentence, the tags of its words
      return [y[y >= 0] for y in labels], [p[y >= 0] for y, p in zip(labels, preds)]
    return [np.asarray(labels)], [np.asarray(preds)]

  def accuracy(labels, preds):
    return sum(int(np.sum(y == p)) for y, p in zip(labels, preds)) / max(sum(len(y) for y in labels), 1)

  train_batches = [{k: v[i:i + 256] for k, v in data.items()} for i in range(0, n, 256)]
  count = sum(int(np.size(x)) for x, t in zip(jax.tree.leaves(trainable), jax.tree.leaves(labels_mask))
              if t == "trained")
  held_out = predictions(eval_batches(eval_source, batch_size=256, transform=transform))
  report = {"top1": accuracy(*held_out), "train_top1": accuracy(*predictions(train_batches)),
            "num_labelled": int(n), "trained_params": int(count)}
  if per_token:
    report["num_tagged_tokens"] = int(sum(len(y) for y in held_out[0]))
    if tag_names is not None and any(t[:2] in ("B-", "I-") for t in tag_names):
      names = np.asarray(list(tag_names))
      report["entity_f1"] = entity_f1([names[y] for y in held_out[0]], [names[p] for p in held_out[1]])
  return report
