"""Linear probe: multinomial logistic regression on frozen features, held-out top-1."""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sslax.eval.context import label_prefix


def _standardize(train_x, test_x):
  mean = train_x.mean(0, keepdims=True)
  std = train_x.std(0, keepdims=True) + 1e-6
  return (train_x - mean) / std, (test_x - mean) / std


def _logits(params, x):
  """x [N, D] -> x W + b; x [N, L, D] (layers) -> (sum_l softmax(a)_l x_l) W + b, SUPERB's weighted sum."""
  if x.ndim == 3:
    x = jnp.einsum("nld,l->nd", x, jax.nn.softmax(params[2]))
  return x @ params[0] + params[1]


@partial(jax.jit, static_argnames=("num_classes", "steps"))
def _fit(x, y, w, l2, tol, *, num_classes: int, steps: int):
  """(params, iterations run): L-BFGS until the gradient's L2 norm is below `tol` or `steps` ran.

  Minimizes the `w`-weighted mean cross-entropy + l2 * ||W||^2. The probe's fits on a part of the
  train split zero the weights of the other rows instead of slicing them out, so every fit of one
  probe has one shape and compiles once."""
  params = (jnp.zeros((x.shape[-1], num_classes), jnp.float32), jnp.zeros((num_classes,), jnp.float32))
  if x.ndim == 3:  # the layer weights' logits, uniform at the start
    params = (*params, jnp.zeros((x.shape[1],), jnp.float32))

  def objective(p):
    logits = _logits(p, x)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(w * ce) / jnp.sum(w) + l2 * jnp.sum(jnp.square(p[0]))

  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(objective)

  def body(carry):
    p, s = carry
    value, grad = value_and_grad(p, state=s)
    updates, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=objective)
    return optax.apply_updates(p, updates), s

  # Stop at convergence, as scikit-learn's and SciPy's L-BFGS do: once converged, each further
  # step's zoom line search finds no decrease and spends all its evaluations (a 512-d probe of
  # the digits: 30 s for 500 fixed steps, 0.7 s to the same objective and accuracy).
  def not_converged(carry):
    count, grad = optax.tree.get(carry[1], "count"), optax.tree.get(carry[1], "grad")
    return (count == 0) | ((count < steps) & (optax.tree.norm(grad) >= tol))

  params, state = jax.lax.while_loop(not_converged, body, (params, opt.init(params)))
  return params, optax.tree.get(state, "count")


def fit_logistic_regression(x: np.ndarray, y: np.ndarray, num_classes: int, l2: float,
                            steps: int = 500, tol: float = 1e-5, weights: np.ndarray | None = None
                            ) -> tuple[jax.Array, jax.Array]:
  """Full-batch L-BFGS (optax.lbfgs) on mean cross-entropy + l2 * ||W||^2; returns (W [D, K], b [K]),
  and for x [N, L, D] (L layers) also the layer weights' logits a [L] of the weighted sum.

  `weights` ([N], default all ones) weight each row's cross-entropy in the mean; rows of weight 0
  take no part. Runs until the gradient's L2 norm is below `tol` (stricter than scikit-learn's
  default, which bounds the largest entry by 1e-4), at most `steps` iterations."""
  w = np.ones(len(x), np.float32) if weights is None else np.asarray(weights, np.float32)
  if w.shape != (len(x),):
    raise ValueError(f"fit_logistic_regression: expected weights of shape ({len(x)},), got {w.shape}")
  params, _ = _fit(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32), jnp.asarray(w), jnp.float32(l2),
                   jnp.float32(tol), num_classes=num_classes, steps=steps)
  return params


@jax.jit
def _weighted_accuracy(params, x, y, w):
  correct = jnp.argmax(_logits(params, x), -1) == y
  return jnp.sum(jnp.where(w > 0, correct, False)) / jnp.sum(w > 0)


def _accuracy(params, x, y, w=None) -> float:
  w = np.ones(len(x), np.float32) if w is None else w
  return float(_weighted_accuracy(params, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32), jnp.asarray(w)))


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                 l2_grid: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2), val_fraction: float = 0.2,
                 seed: int = 0, steps: int = 500, tol: float = 1e-5) -> dict[str, float]:
  """Held-out top-1 of a linear classifier on frozen features.

  Features are standardized with train statistics. The L2 strength is picked
  on a held-out `val_fraction` of the train split, then the classifier is
  refit on the whole train split and scored once on the test split. Each fit
  runs L-BFGS to a gradient norm below `tol`, at most `steps` iterations.

  Features [N, L, D] are L layers of one width: each layer is standardized, and
  the classifier reads their weighted sum with softmax weights learned with it
  (SUPERB's featurizer: Yang et al. 2021, s3prl `Featurizer`).

  Args:
    train_x: [N, D] (or [N, L, D]) features; train_y: [N] int labels; test_x/test_y likewise.

  Returns:
    {"top1": test accuracy, "l2": chosen strength, "val_top1": its validation accuracy}, and for
    layers "layer_weights": the softmax weights (list of L floats).
  """
  if len(train_x) == 0 or len(test_x) == 0:
    raise ValueError(f"linear_probe: expected non-empty splits, got {len(train_x)} train and {len(test_x)} test")
  if train_x.ndim not in (2, 3) or test_x.shape[1:] != train_x.shape[1:]:
    raise ValueError(f"linear_probe: expected [N, D] (or [N, layers, D]) features of equal trailing shape, got "
                     f"{train_x.shape} and {test_x.shape}")
  num_classes = int(max(train_y.max(), test_y.max())) + 1
  train_x, test_x = _standardize(np.asarray(train_x, np.float64), np.asarray(test_x, np.float64))
  # on the device once, in the fits' dtype: the five fits and four scores below reuse them
  train_x, test_x = jnp.asarray(train_x, jnp.float32), jnp.asarray(test_x, jnp.float32)
  train_y, test_y = jnp.asarray(train_y, jnp.int32), jnp.asarray(test_y, jnp.int32)
  perm = np.random.default_rng(seed).permutation(len(train_x))
  n_val = max(1, int(len(train_x) * val_fraction))
  # the validation rows by weight, not by slicing: the fits below share one shape (one compile)
  is_val = np.zeros(len(train_x), np.float32)
  is_val[perm[:n_val]] = 1.0
  scores = {}
  for l2 in l2_grid:
    p = fit_logistic_regression(train_x, train_y, num_classes, l2, steps, tol, weights=1.0 - is_val)
    scores[l2] = _accuracy(p, train_x, train_y, is_val)
  best = max(scores, key=lambda k: (scores[k], k))
  p = fit_logistic_regression(train_x, train_y, num_classes, best, steps, tol)
  out = {"top1": _accuracy(p, test_x, test_y), "l2": float(best), "val_top1": scores[best]}
  if train_x.ndim == 3:
    out["layer_weights"] = [float(w) for w in jax.nn.softmax(p[2])]
  return out


@dataclasses.dataclass(frozen=True)
class LinearProbe:
  """Evaluator: `linear_probe` top-1 of the frozen features on the probe test split, for "label"
  and each of `eval.extra_labels`; at the end of a run only, and only under `eval.linear_probe`."""
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.probe_train is None or not run.linear_probe:
      return {}
    train_x, train_y, test_x, test_y = run.probe_features()
    return {f"{label_prefix(k)}linear_top1": linear_probe(train_x, train_y[k], test_x, test_y[k],
                                                           seed=run.config.seed)["top1"]
            for k in run.label_keys}
