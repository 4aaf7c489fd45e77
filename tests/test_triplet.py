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
