"""The triplet loss: mined triplets against NumPy and PyTorch's TripletMarginLoss, the global batch."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import NamedSharding, PartitionSpec

from sslax.losses import triplet_loss
from sslax.losses.triplet import pairwise_distances
from sslax.mesh import make_mesh


def _batch(m=24, d=8, classes=5, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(m, d)).astype(np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  return x, rng.integers(0, classes, m).astype(np.int32)


def _mine(x, labels, mining, squared):
  """The triplets as TF Addons mines them, written out with loops: [(a, p, n)]."""
  d = ((x[:, None] - x[None]) ** 2).sum(-1)
  d = d if squared else np.sqrt(d)
  m, triplets = len(x), []
  for a in range(m):
    pos = [p for p in range(m) if p != a and labels[p] == labels[a]]
    neg = [n for n in range(m) if labels[n] != labels[a]]
    if not pos or not neg:
      continue
    if mining == "hard":
      triplets.append((a, max(pos, key=lambda p: d[a, p]), min(neg, key=lambda n: d[a, n])))
      continue
    for p in pos:
      outside = [n for n in neg if d[a, n] > d[a, p]]
      triplets.append((a, p, min(outside, key=lambda n: d[a, n]) if outside else max(neg, key=lambda n: d[a, n])))
  return triplets


@pytest.mark.parametrize("mining", ["semi_hard", "hard"])
@pytest.mark.parametrize("squared", [True, False])
def test_mined_triplets_match_numpy_and_torch_triplet_margin_loss(mining, squared):
  x, labels = _batch()
  margin = 0.3
  triplets = np.array(_mine(x, labels, mining, squared))
  a, p, n = (torch.tensor(x[triplets[:, i]], dtype=torch.float64) for i in range(3))
  if squared:  # TripletMarginLoss's distance is plain p = 2; the squared form written out in torch
    ref = torch.clamp(((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + margin, min=0).mean()
  else:
    ref = torch.nn.TripletMarginLoss(margin=margin, p=2, eps=0.0)(a, p, n)
  loss, aux = triplet_loss(jnp.asarray(x), jnp.asarray(labels), margin=margin, mining=mining, squared=squared)
  np.testing.assert_allclose(float(loss), float(ref), rtol=1e-4, atol=1e-6)
  d = np.asarray(pairwise_distances(jnp.asarray(x), squared=squared), np.float64)
  np.testing.assert_allclose(float(aux["an_distance"]), d[triplets[:, 0], triplets[:, 2]].mean(), rtol=1e-4)
  # finite gradients, and none for rows that take part in no triplet
  g = jax.grad(lambda e: triplet_loss(e, jnp.asarray(labels), mining=mining, squared=squared)[0])(jnp.asarray(x))
  assert np.all(np.isfinite(np.asarray(g)))


def test_two_views_as_positives_and_padding_rows_take_no_part():
  x, _ = _batch(m=16)
  ids = np.concatenate([np.arange(8), np.arange(8)]).astype(np.int32)
  loss, _ = triplet_loss(jnp.asarray(x), jnp.asarray(ids))
  ref = np.mean([max(((x[a] - x[p]) ** 2).sum() - ((x[a] - x[n]) ** 2).sum() + 0.2, 0)
                 for a, p, n in _mine(x, ids, "semi_hard", True)])
  np.testing.assert_allclose(float(loss), ref, rtol=1e-4)
  padded = np.concatenate([x, np.zeros((4, x.shape[1]), np.float32)])
  pad_ids = np.concatenate([ids, np.full(4, 99, np.int32)])
  valid = np.arange(20) < 16
  loss_pad, _ = triplet_loss(jnp.asarray(padded), jnp.asarray(pad_ids), valid=jnp.asarray(valid))
  np.testing.assert_allclose(float(loss_pad), float(loss), rtol=1e-6)


def test_triplet_loss_over_the_global_batch_when_sharded():
  mesh = make_mesh({"data": -1})
  x, labels = _batch(m=32)
  shard = NamedSharding(mesh, PartitionSpec(mesh.axis_names))
  sharded = jax.jit(lambda e, y: triplet_loss(e, y)[0])(jax.device_put(jnp.asarray(x), shard),
                                                        jax.device_put(jnp.asarray(labels), shard))
  np.testing.assert_allclose(float(sharded), float(triplet_loss(jnp.asarray(x), jnp.asarray(labels))[0]),
                             rtol=1e-5)


def test_triplet_loss_rejects_bad_arguments():
  with pytest.raises(ValueError, match="triplet_loss: mining expected one of"):
    triplet_loss(jnp.zeros((4, 2)), jnp.zeros(4, jnp.int32), mining="easy")
  with pytest.raises(ValueError, match=r"triplet_loss: expected labels of shape \(4,\), got \(3,\)"):
    triplet_loss(jnp.zeros((4, 2)), jnp.zeros(3, jnp.int32))


def _eer_by_sweep(scores, same):
  """The EER written out: the ROC polyline through (false accept rate, true accept rate) at every
  threshold from above the top score down, crossed with false reject = false accept."""
  pos, neg = scores[same], scores[~same]
  points = [(0.0, 0.0)]
  for t in np.sort(np.unique(scores))[::-1]:
    points.append((np.mean(neg >= t), np.mean(pos >= t)))
  for (f0, t0), (f1, t1) in zip(points[:-1], points[1:]):
    d0, d1 = (1 - t0) - f0, (1 - t1) - f1
    if d1 <= 0:
      return f1 if d1 == 0 else f0 + d0 / (d0 - d1) * (f1 - f0)
  raise AssertionError("no crossing")


def test_verification_metrics_match_numpy():
  from sslax.eval.verification import equal_error_rate, verification_metrics

  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(5), 6)
  x = rng.normal(size=(5, 8))[labels] + 0.9 * rng.normal(size=(30, 8))
  out = verification_metrics(x, labels)
  xn = x / np.linalg.norm(x, axis=1, keepdims=True)
  sim = xn @ xn.T
  nearest = [max((j for j in range(30) if j != i), key=lambda j: sim[i, j]) for i in range(30)]
  assert out["recall@1"] == np.mean(labels[nearest] == labels)
  pairs = [(i, j) for i in range(30) for j in range(i + 1, 30)]
  scores = np.array([sim[i, j] for i, j in pairs])
  same = np.array([labels[i] == labels[j] for i, j in pairs])
  np.testing.assert_allclose(out["eer"], _eer_by_sweep(scores, same), atol=1e-12)
  assert 0 < out["eer"] < 0.5 and 0 < out["recall@1"] <= 1
  # separable: EER 0; ties and a hand-checked case: one same pair at 0.5, different pairs at 0.9 and 0.1
  assert verification_metrics(np.eye(3)[[0, 0, 1, 1, 2, 2]], np.array([0, 0, 1, 1, 2, 2]))["eer"] == 0.0
  np.testing.assert_allclose(equal_error_rate(np.array([0.5, 0.9, 0.1]), np.array([True, False, False])), 0.5)
  with pytest.raises(ValueError, match="expected both same and different pairs"):
    equal_error_rate(np.array([0.1, 0.2]), np.array([True, True]))
  with pytest.raises(ValueError, match=r"expected embeddings \[N, D\] and labels \[N\]"):
    verification_metrics(np.zeros((3, 2)), np.zeros(4))
