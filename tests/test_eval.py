import numpy as np
import pytest

from sslax.eval import fit_logistic_regression, knn_accuracy, knn_predict, linear_probe


def _blobs(n_per_class=40, dim=5, classes=3, spread=0.3, seed=0):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, dim)) * 3
  y = np.repeat(np.arange(classes), n_per_class)
  return (centers[y] + spread * rng.normal(size=(len(y), dim))).astype(np.float32), y.astype(np.int32)


def test_linear_probe_separates_blobs_and_fails_on_noise():
  xtr, ytr = _blobs(seed=0)
  xte, yte = _blobs(seed=0)[0] + 0.01, _blobs(seed=0)[1]
  assert linear_probe(xtr, ytr, xte, yte)["top1"] == 1.0
  rng = np.random.default_rng(1)
  noise = linear_probe(rng.normal(size=(300, 5)), rng.integers(0, 3, 300), rng.normal(size=(300, 5)),
                       rng.integers(0, 3, 300))
  assert noise["top1"] < 0.5


def test_logistic_regression_matches_sklearn():
  from sklearn.linear_model import LogisticRegression

  x, y = _blobs(spread=2.0, seed=2)
  w, b = fit_logistic_regression(x, y, 3, l2=1e-2, steps=300)
  # sklearn's C is the inverse of the summed-loss penalty: C = 1 / (2 * l2 * n)
  ref = LogisticRegression(C=1.0 / (2 * 1e-2 * len(x)), max_iter=5000, tol=1e-10).fit(x, y)
  np.testing.assert_allclose(np.asarray(x @ np.asarray(w) + np.asarray(b)).argmax(1), ref.predict(x))
  np.testing.assert_allclose(np.asarray(w).T - np.asarray(w).T.mean(0), ref.coef_ - ref.coef_.mean(0), atol=2e-3)


def test_logistic_regression_stops_at_convergence_at_the_optimum_of_all_its_steps():
  import importlib

  import jax.numpy as jnp

  fit = importlib.import_module("sslax.eval.linear_probe")._fit
  x, y = _blobs(n_per_class=60, dim=32, spread=2.0, seed=4)
  x, y = jnp.asarray(x), jnp.asarray(y)

  def objective(p, l2):
    logits = np.asarray(x, np.float64) @ np.asarray(p[0], np.float64) + np.asarray(p[1], np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), np.asarray(y)].mean() + l2 * np.sum(np.square(np.asarray(p[0], np.float64)))

  for l2 in (1e-5, 1e-2):
    w = jnp.ones(len(y), jnp.float32)
    early, iters = fit(x, y, w, jnp.float32(l2), jnp.float32(1e-5), num_classes=3, steps=500)
    full, all_iters = fit(x, y, w, jnp.float32(l2), jnp.float32(0.0), num_classes=3, steps=500)
    assert 0 < int(iters) < 500 and int(all_iters) == 500
    assert abs(objective(early, l2) - objective(full, l2)) < 1e-4 * max(1.0, objective(full, l2))
    np.testing.assert_array_equal(np.argmax(x @ early[0] + early[1], 1), np.argmax(x @ full[0] + full[1], 1))


def test_rows_of_weight_zero_take_no_part_in_the_fit():
  # the probe picks its L2 on a validation part of the train split by zeroing those rows' weights
  x, y = _blobs(n_per_class=50, dim=8, spread=2.0, seed=5)
  keep = np.random.default_rng(0).random(len(y)) < 0.7
  weighted = fit_logistic_regression(x, y, 3, l2=1e-3, weights=keep.astype(np.float32))
  sliced = fit_logistic_regression(x[keep], y[keep], 3, l2=1e-3)
  for a, b in zip(weighted, sliced):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-3 * float(np.abs(np.asarray(b)).max()))
  np.testing.assert_array_equal(np.argmax(x @ np.asarray(weighted[0]) + np.asarray(weighted[1]), 1),
                                np.argmax(x @ np.asarray(sliced[0]) + np.asarray(sliced[1]), 1))
  with pytest.raises(ValueError, match=r"expected weights of shape \(150,\), got \(3,\)"):
    fit_logistic_regression(x, y, 3, l2=1e-3, weights=np.ones(3))


def test_knn_weighted_vote():
  train = np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32)
  labels = np.array([0, 0, 1])
  pred = knn_predict(train, labels, np.array([[1, 0.05], [0.05, 1]], np.float32), num_classes=2, k=2)
  np.testing.assert_array_equal(pred, [0, 1])
  x, y = _blobs(seed=3)
  assert knn_accuracy(x, y, x, y, k=5) == 1.0


def _knn_numpy(train_x, train_y, test_x, num_classes, k, temperature):
  """solo-learn's weighted kNN written out in NumPy: the whole similarity matrix, one top k."""
  tr = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
  te = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
  sim = te.astype(np.float64) @ tr.T.astype(np.float64)
  top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
  weights = np.exp(np.take_along_axis(sim, top, 1) / temperature)
  votes = np.zeros((len(te), num_classes))
  for c in range(num_classes):
    votes[:, c] = (weights * (train_y[top] == c)).sum(1)
  return votes.argmax(1)


def test_knn_split_over_8_devices_equals_one_device_and_numpy(devices):
  """Train features split by rows over 8 devices (1,437 rows: 180 per device, the last padded),
  per-device top k merged by a second top k: the predictions of one device and of NumPy's single
  top k over the whole similarity matrix, on real data (scikit-learn's digits)."""
  from sklearn.datasets import load_digits

  from sslax.train import make_mesh

  x, y = load_digits(return_X_y=True)
  x = x.astype(np.float32) + 1e-3  # no all-zero row
  train_x, train_y, test_x = x[:1437], y[:1437], x[1437:]
  expected = _knn_numpy(train_x, train_y, test_x, 10, k=20, temperature=0.1)
  eight = knn_predict(train_x, train_y, test_x, num_classes=10, k=20, temperature=0.1, chunk=128,
                      mesh=make_mesh({"data": -1}, devices))
  one = knn_predict(train_x, train_y, test_x, num_classes=10, k=20, temperature=0.1, chunk=128,
                    mesh=make_mesh({"data": 1}, devices))
  np.testing.assert_array_equal(eight, one)
  np.testing.assert_array_equal(eight, expected)
  # k larger than a device's rows: the merge still sees the global top k
  big = knn_predict(train_x, train_y, test_x, num_classes=10, k=300, temperature=0.1,
                    mesh=make_mesh({"data": -1}, devices))
  np.testing.assert_array_equal(big, _knn_numpy(train_x, train_y, test_x, 10, k=300, temperature=0.1))
