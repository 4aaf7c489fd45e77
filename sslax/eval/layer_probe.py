"""The linear probe at every layer: where in the network a method's features are best.

Pretext and masked-image methods learn their most linearly separable
features in the middle of the network (Zhang et al. 2016, Gidaris et al.
2018; MAE's linear probe of ViT blocks); the last layer's probe alone hides
that. The methods that have named intermediate features (`method.layer_features`)
list this evaluator.
"""
from __future__ import annotations

import dataclasses

import grain
import jax
import jax.numpy as jnp
import numpy as np

from sslax.eval.context import label_prefix
from sslax.eval.features import extract_features_and_labels, make_feature_fn
from sslax.eval.knn import knn_accuracy
from sslax.eval.linear_probe import linear_probe


def layer_spec(method, state) -> dict[str, int]:
  """{layer name: feature width} of `method.layer_features`, in order, from its shapes alone."""
  spec = method.probe_inputs.batch_spec(1)
  zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in spec.items()}
  shapes = jax.eval_shape(lambda: method.layer_features(state.model(), zeros))
  return {name: int(s.shape[-1]) for name, s in shapes.items()}


@dataclasses.dataclass(frozen=True)
class LayerProbe:
  """Evaluator: `linear_probe` top-1 of each of `method.layer_features(model, inputs)` ({name: [B, D]},
  frozen, evaluation mode) on the probe test split, trained on at most `max_train` probe train
  examples (the first ones; 0: all). Reports `layer/<name>/linear_top1` per layer and
  `layer/best_linear_top1` (`layer/best_index`: its position in the network, 0 = first); at the
  end of a run, under `eval.linear_probe`.

  weighted_sum: also kNN top-1 per layer (`layer/<name>/knn_top1`, `layer/best_knn_top1`) and
  SUPERB's probe (Yang et al. 2021): the linear probe of a softmax-weighted sum of all layers
  (which must share one width; "input" first as layer 0), weights learned with the classifier
  (`layer/weighted_linear_top1`, `layer/weight/<name>`), and the kNN of that weighted sum of the
  standardized layers (`layer/weighted_knn_top1`). Mean pooling is linear, so the sum of the
  pooled layers is the pooled sum."""
  max_train: int = 10000
  monitor: bool = False
  weighted_sum: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.probe_train is None or not run.linear_probe:
      return {}
    method, state, mesh, config = run.method, run.state, run.mesh, run.config
    names = layer_spec(method, state)
    widths = np.cumsum([0, *names.values()])

    def stacked(model, inputs):
      return jnp.concatenate(list(method.layer_features(model, inputs).values()), axis=-1)

    fn = make_feature_fn(method, mesh, stacked)
    train = run.data.probe_train
    if self.max_train and len(train) > self.max_train:
      train = grain.MapDataset.source(train)[:self.max_train]
    probe = method.probe_inputs
    kw = dict(batch_size=config.eval.batch_size, transform=probe.transform(run.label_keys), feature_fn=fn,
              label_keys=run.label_keys, keys=probe.keys)
    train_x, train_y = extract_features_and_labels(method, state, train, mesh, **kw)
    test_x, test_y = extract_features_and_labels(method, state, run.data.probe_test, mesh, **kw)
    out: dict[str, float] = {}
    for key in run.label_keys:
      prefix = label_prefix(key)
      scores = []
      for i, name in enumerate(names):
        cols = slice(widths[i], widths[i + 1])
        top1 = linear_probe(train_x[:, cols], train_y[key], test_x[:, cols], test_y[key], seed=config.seed)["top1"]
        out[f"{prefix}layer/{name}/linear_top1"] = top1
        scores.append(top1)
      best = int(np.argmax(scores))
      out[f"{prefix}layer/best_linear_top1"], out[f"{prefix}layer/best_index"] = scores[best], float(best)
      if self.weighted_sum:
        out.update(self._weighted(train_x, train_y[key], test_x, test_y[key], names, widths, prefix, config))
    return out

  def _weighted(self, train_x, train_y, test_x, test_y, names, widths, prefix, config) -> dict[str, float]:
    c = config.eval
    out, knn = {}, []
    for i, name in enumerate(names):
      cols = slice(widths[i], widths[i + 1])
      knn.append(knn_accuracy(train_x[:, cols], train_y, test_x[:, cols], test_y, k=c.knn_k,
                              temperature=c.knn_temperature))
      out[f"{prefix}layer/{name}/knn_top1"] = knn[-1]
    out[f"{prefix}layer/best_knn_top1"] = max(knn)
    if len(set(names.values())) != 1:
      raise ValueError(f"LayerProbe(weighted_sum=True): expected layers of one width, got {dict(names)}")
    layers = len(names)
    train_l, test_l = (x.reshape(len(x), layers, -1) for x in (train_x, test_x))
    probe = linear_probe(train_l, train_y, test_l, test_y, seed=config.seed)
    out[f"{prefix}layer/weighted_linear_top1"] = probe["top1"]
    weights = np.asarray(probe["layer_weights"], np.float32)
    for name, w in zip(names, weights):
      out[f"{prefix}layer/weight/{name}"] = float(w)
    mean, std = train_l.mean(0), train_l.std(0) + 1e-6
    mix = [np.einsum("nld,l->nd", (x - mean) / std, weights) for x in (train_l, test_l)]
    out[f"{prefix}layer/weighted_knn_top1"] = knn_accuracy(mix[0], train_y, mix[1], test_y, k=c.knn_k,
                                                           temperature=c.knn_temperature)
    return out
