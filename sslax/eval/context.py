"""What an evaluator reads: the run's method, state and mesh, and the data to evaluate on.

An evaluator (`sslax.eval.knn.KNN`, `sslax.eval.linear_probe.LinearProbe`,
`sslax.eval.heldout.HeldoutMetrics`, ...) is a small object a method lists in
`evaluators()`; called with an `EvalRun`, it returns `{name: float}`. Its
`monitor` flag says whether it also runs every `train.knn_every` steps (on at
most `eval.monitor_max_train` probe examples) or only at the end. Frozen
features of the probe splits are computed once per `EvalRun` and shared by
the evaluators that read them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import grain
import numpy as np

from sslax.eval.features import extract_features_and_labels


@dataclasses.dataclass
class EvalData:
  """The run's data beside its train stream: the pretraining train split (`train`, what a
  method's `refresh` reads), the probe splits (labelled records: `eval.probe_data`, or the
  pretraining data's train and eval splits) and the held-out split of the pretraining data
  (perplexity, reconstruction). A split is None where the run has none (unlabelled pretraining
  data has no probe splits)."""
  train: Any = None
  probe_train: Any = None
  probe_test: Any = None
  heldout: Any = None


@dataclasses.dataclass
class EvalRun:
  """One evaluation of `state`: what every evaluator is called with.

  Args:
    monitor: True every `train.knn_every` steps (only evaluators with `monitor` run, on at most
      `eval.monitor_max_train` probe examples), False at the end of the run.
    linear_probe: whether `LinearProbe` runs (`eval.linear_probe` unless the caller says).
    feature_fn: a compiled `make_feature_fn(method, mesh)` to reuse, or None.
    workdir: where an evaluator that draws (reconstructions, samples) writes its files; None:
      nowhere (it still returns its figures).
  """
  method: Any
  state: Any
  mesh: Any
  config: Any
  data: EvalData
  monitor: bool = False
  linear_probe: bool | None = None
  feature_fn: Any = None
  workdir: str | None = None
  _features: tuple | None = dataclasses.field(default=None, repr=False)

  def __post_init__(self):
    if self.linear_probe is None:
      self.linear_probe = bool(self.config.eval.linear_probe)

  @property
  def label_keys(self) -> tuple[str, ...]:
    """"label", then `eval.extra_labels` (e.g. the speaker of a spoken digit)."""
    return ("label", *self.config.eval.get("extra_labels", ()))

  def probe_features(self) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """(train features [N, D], train labels {key: [N]}, test features, test labels) of the probe
    splits (records read as `method.probe_inputs`) through `method.features`, computed on first use."""
    if self._features is None:
      train = self.data.probe_train
      limit = self.config.eval.monitor_max_train if self.monitor else self.config.eval.get("max_train")
      if limit and len(train) > limit:
        train = grain.MapDataset.source(train)[:limit]
      probe = self.method.probe_inputs
      kw = dict(batch_size=self.config.eval.batch_size, transform=probe.transform(self.label_keys),
                feature_fn=self.feature_fn, label_keys=self.label_keys, keys=probe.keys)
      train_x, train_y = extract_features_and_labels(self.method, self.state, train, self.mesh, **kw)
      test_x, test_y = extract_features_and_labels(self.method, self.state, self.data.probe_test, self.mesh, **kw)
      self._features = (train_x, train_y, test_x, test_y)
    return self._features


def label_prefix(key: str) -> str:
  """Report names: "label" reports as knn_top1, other label keys as <key>/knn_top1."""
  return "" if key == "label" else f"{key}/"
