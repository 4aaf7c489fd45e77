"""What fine-tuning needs beside the train loop: few-label selection and conlleval's entity F1.

Fine-tuning itself is a downstream method (`sslax.methods.classify`,
`sslax.methods.tag`) run by the shared train loop (`sslax finetune`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


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
