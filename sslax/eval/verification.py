"""Verification: is this the same speaker (face, class)? Recall@1 and the equal error rate of
cosine similarities between held-out embeddings.

- recall@1 (leave-one-out, as the metric-learning benchmarks of Song et al. 2016 and the
  FaceNet / speaker-embedding literature report it): the fraction of held-out examples whose
  nearest other held-out example (cosine) has their label.
- EER (as in speaker verification, e.g. the VoxCeleb protocol): over every pair of held-out
  examples, the error rate at the threshold where false accepts (different labels scoring
  above it) equal false rejects (same label below it); the crossing is interpolated linearly
  between the two thresholds around it. scikit-learn's `roc_curve` gives the curve; the EER
  is not in scikit-learn, so it is computed here.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import roc_curve

from sslax.eval.context import label_prefix
from sslax.eval.features import extract_features_and_labels, make_feature_fn


def cosine_matrix(x: np.ndarray) -> np.ndarray:
  """[N, N] cosine similarities of the rows of x [N, D] (float64; a zero row scores 0)."""
  x = np.asarray(x, np.float64)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  return x @ x.T


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> float:
  """EER of `scores` [P] for target pairs `same` [P] bool (at least one of each)."""
  same = np.asarray(same, bool)
  if same.all() or not same.any():
    raise ValueError(f"equal_error_rate: expected both same and different pairs, got {int(same.sum())} same of "
                     f"{same.size}")
  fpr, tpr, _ = roc_curve(same, np.asarray(scores, np.float64))
  fnr = 1.0 - tpr
  diff = fnr - fpr  # decreasing from 1 to -1 along the curve
  i = int(np.argmax(diff <= 0))  # first point at or past the crossing; the curve starts at (0, 0)
  if diff[i] == 0:
    return float(fpr[i])
  t = diff[i - 1] / (diff[i - 1] - diff[i])  # where the segment between i - 1 and i crosses fnr = fpr
  return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def verification_metrics(embeddings: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """{"recall@1", "eer"} of embeddings [N, D] with labels [N] (N >= 2, at least two labels and a
  label with two examples)."""
  embeddings, labels = np.asarray(embeddings), np.asarray(labels)
  n = len(labels)
  if embeddings.ndim != 2 or embeddings.shape[0] != n or n < 2:
    raise ValueError(f"verification_metrics: expected embeddings [N, D] and labels [N] with N >= 2, got "
                     f"{embeddings.shape} and {labels.shape}")
  sim = cosine_matrix(embeddings)
  np.fill_diagonal(sim, -np.inf)
  recall = float(np.mean(labels[np.argmax(sim, axis=1)] == labels))
  i, j = np.triu_indices(n, k=1)
  return {"recall@1": recall, "eer": equal_error_rate(sim[i, j], labels[i] == labels[j])}


@dataclasses.dataclass(frozen=True)
class Verification:
  """Evaluator: `verification_metrics` on the probe test split for `label` (e.g. "speaker"),
  reported as "<label>/recall@1" and "<label>/eer".

  Args:
    label: the label key the pairs are judged by ("label" or one of `eval.extra_labels`).
    embeddings: read `method.embeddings(model, inputs)` (the trained metric embedding, e.g. the
      triplet network's l2-normalized output) instead of the probe features; reported under
      "<label>/embedding_recall@1" and "<label>/embedding_eer".
  """
  label: str = "speaker"
  embeddings: bool = False
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.probe_test is None or self.label not in run.label_keys:
      return {}
    if self.embeddings:
      method = run.method
      probe = method.probe_inputs
      x, y = extract_features_and_labels(
          method, run.state, run.data.probe_test, run.mesh, label_keys=(self.label,),
          batch_size=run.config.eval.batch_size, transform=probe.transform((self.label,)), keys=probe.keys,
          feature_fn=make_feature_fn(method, run.mesh, features=method.embeddings))
    else:
      _, _, x, y = run.probe_features()
    out = verification_metrics(x, y[self.label])
    name = "embedding_" if self.embeddings else ""
    return {f"{label_prefix(self.label)}{name}{k}": v for k, v in out.items()}
