"""How well a clustering method's clusters match the labels: normalized mutual information.

SwAV and DeepCluster report the NMI between their cluster assignments and the
ImageNet classes over training (Caron et al. 2018, Fig. 2; 2020). The methods
that assign clusters (`method.cluster_assignments`) list this evaluator; NMI
itself is scikit-learn's `normalized_mutual_info_score` (arithmetic mean
normalization, as both papers).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from sslax.eval.context import label_prefix
from sslax.eval.features import extract_features_and_labels, make_feature_fn


@dataclasses.dataclass(frozen=True)
class ClusterNMI:
  """Evaluator: NMI between `method.cluster_assignments(model, inputs)` ([B] cluster ids, frozen,
  evaluation mode) and each label key on the probe test split, as `clusters/nmi`; also
  `clusters/used`, the number of distinct clusters the split falls into. Runs every
  `train.knn_every` steps as well as at the end (`monitor`), so the NMI is logged over training."""
  monitor: bool = True

  def __call__(self, run) -> dict[str, float]:
    if run.data.probe_test is None:
      return {}
    method, probe = run.method, run.method.probe_inputs

    def assignments(model, inputs):
      return method.cluster_assignments(model, inputs)[:, None].astype(jnp.float32)

    ids, labels = extract_features_and_labels(
        method, run.state, run.data.probe_test, run.mesh, batch_size=run.config.eval.batch_size,
        transform=probe.transform(run.label_keys), feature_fn=make_feature_fn(method, run.mesh, assignments),
        label_keys=run.label_keys, keys=probe.keys)
    clusters = ids[:, 0].astype(np.int64)
    out = {"clusters/used": float(len(np.unique(clusters)))}
    for key in run.label_keys:
      out[f"{label_prefix(key)}clusters/nmi"] = float(normalized_mutual_info_score(labels[key], clusters))
    return out
