"""SwAV: Sinkhorn-Knopp and the swapped-prediction loss against their formulas and lightly's
`SwaVLoss`, the global batch under sharding, and the method's queue and frozen prototypes."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import NamedSharding, PartitionSpec

from helpers import digits_batch, log_softmax, method_digits_config
from sslax.losses import sinkhorn_knopp, swav_loss
from sslax.methods import make_method
from sslax.mesh import make_mesh
from torch_reference import swav_loss_lightly


def _scores(*shape, seed=0):
  """Cosine scores: unit embeddings against unit prototypes, as SwAV computes them."""
  rng = np.random.default_rng(seed)
  e = rng.normal(size=(*shape[:-1], 16))
  c = rng.normal(size=(16, shape[-1]))
  e /= np.linalg.norm(e, axis=-1, keepdims=True)
  c /= np.linalg.norm(c, axis=0, keepdims=True)
  return (e @ c).astype(np.float32)


def _sinkhorn_numpy(scores, epsilon=0.05, iterations=3):
  """facebookresearch/swav `distributed_sinkhorn` on one process, in float64."""
  q = np.exp(scores.astype(np.float64) / epsilon).T  # [K, B]
  k, b = q.shape
  q /= q.sum()
  for _ in range(iterations):
    q /= q.sum(axis=1, keepdims=True)
    q /= k
    q /= q.sum(axis=0, keepdims=True)
    q /= b
  return (q * b).T


@pytest.mark.parametrize("iterations", [1, 3])
def test_sinkhorn_matches_the_formula_in_numpy(iterations):
  scores = _scores(24, 10)
  q = np.asarray(sinkhorn_knopp(jnp.asarray(scores), epsilon=0.05, iterations=iterations))
  np.testing.assert_allclose(q, _sinkhorn_numpy(scores, iterations=iterations), rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)  # each sample's code is a distribution
  # no gradient reaches the scores through the codes
  g = jax.grad(lambda s: jnp.sum(sinkhorn_knopp(s) * jnp.arange(10.0)))(jnp.asarray(scores))
  assert float(jnp.abs(g).max()) == 0.0


def test_sinkhorn_runs_over_the_global_batch_when_sharded():
  mesh = make_mesh({"data": -1})
  assert mesh.devices.size == 8
  scores = _scores(32, 12, seed=3)
  sharded = jax.device_put(jnp.asarray(scores), NamedSharding(mesh, PartitionSpec(mesh.axis_names)))
  q = jax.jit(sinkhorn_knopp)(sharded)
  # the sums run over all 32 rows, not each device's 4 (that would give other codes)
  np.testing.assert_allclose(np.asarray(q), _sinkhorn_numpy(scores), rtol=1e-4, atol=1e-7)
  per_device = np.concatenate([_sinkhorn_numpy(part) for part in np.split(scores, 8)])
  assert np.abs(per_device - np.asarray(q)).max() > 1e-2


@pytest.mark.parametrize("num_local", [0, 2])
def test_swav_loss_matches_the_formula_in_numpy(num_local):
  v, n, k, t = 2 + num_local, 8, 10, 0.1
  scores = _scores(v, n, k, seed=1)
  codes = np.stack([_sinkhorn_numpy(scores[i]) for i in range(2)])
  total = 0.0
  for a in range(2):  # each assigned crop, predicted from every other crop
    sub = sum(np.mean(-np.sum(codes[a] * log_softmax(scores[u] / t), -1)) for u in range(v) if u != a)
    total += sub / (v - 1)
  loss, aux = swav_loss(jnp.asarray(scores), jnp.asarray(codes, jnp.float32), temperature=t)
  np.testing.assert_allclose(float(loss), total / 2, rtol=1e-5)
  entropy = -np.mean(np.sum(codes * np.log(codes + 1e-20), -1))
  np.testing.assert_allclose(float(aux["code_entropy"]), entropy, rtol=1e-4)
  used = len(np.unique(codes.argmax(-1))) / k
  assert float(aux["code_usage"]) == pytest.approx(used)
  g = jax.grad(lambda c: swav_loss(jnp.asarray(scores), c)[0])(jnp.asarray(codes, jnp.float32))
  assert float(jnp.abs(g).max()) == 0.0  # the codes are targets


@pytest.mark.parametrize("num_local,queue", [(0, False), (2, False), (2, True)])
def test_swav_loss_equals_lightly_swav_loss(num_local, queue):
  n, k, q_size = 16, 20, 32
  scores = _scores(2 + num_local, n, k, seed=2)
  queue_scores = _scores(2, q_size, k, seed=4) if queue else None
  high = [torch.tensor(scores[i], requires_grad=True) for i in range(2)]
  low = [torch.tensor(scores[i], requires_grad=True) for i in range(2, 2 + num_local)]
  ref = swav_loss_lightly(high, low, None if queue_scores is None else [torch.tensor(q) for q in queue_scores])
  ref.backward()

  def ours(s):
    joint = s[:2] if queue_scores is None else jnp.concatenate([s[:2], jnp.asarray(queue_scores)], axis=1)
    codes = jnp.stack([sinkhorn_knopp(joint[i])[:n] for i in range(2)])
    return swav_loss(s, codes)[0]

  loss, grad = jax.value_and_grad(ours)(jnp.asarray(scores))
  np.testing.assert_allclose(float(loss), ref.item(), rtol=1e-5)
  ref_grad = np.stack([t.grad.numpy() for t in high + low])
  np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-4, atol=1e-6)


def test_queue_joins_the_codes_when_full_and_prototypes_thaw():
  config = method_digits_config("swav", **{"method.queue_size": 128, "method.queue_start_step": 1,
                                           "method.freeze_prototypes_steps": 2})
  method = make_method(config)
  assert method.queue_from == 2  # 128 rows of a 64-image batch: full after 2 steps
  from flax import nnx

  from sslax.models.functional import merge_model, split_model

  graphdef, params, batch_stats = split_model(method.build_model(nnx.Rngs(0)))
  batch = {"image": jnp.asarray(digits_batch(64)["image"])}
  shape = method.init_state(None, jax.random.PRNGKey(0))["queue"].shape
  state = {"queue": jax.random.normal(jax.random.PRNGKey(1), shape)}

  def run(p, step):
    return method.loss(merge_model(graphdef, p, batch_stats), batch, state, jax.random.PRNGKey(2),
                       jnp.asarray(step))

  l1, aux1, new1 = run(params, 1)
  l2, aux2, _ = run(params, 2)
  assert float(aux1["queue_used"]) == 0.0 and float(aux2["queue_used"]) == 1.0
  assert abs(float(l1) - float(l2)) > 1e-6  # the queue changed the codes
  # newest first: the batch's embeddings (view 1 and view 2) shift the queue by 64 rows
  np.testing.assert_array_equal(np.asarray(new1["queue"][:, 64:]), np.asarray(state["queue"][:, :64]))
  np.testing.assert_allclose(np.linalg.norm(np.asarray(new1["queue"][:, :64]), axis=-1), 1.0, rtol=1e-5)
  frozen = jax.grad(lambda p: run(p, 1)[0])(params)["prototypes"][...]
  thawed = jax.grad(lambda p: run(p, 2)[0])(params)["prototypes"][...]
  assert float(jnp.abs(frozen).max()) == 0.0 and float(jnp.abs(thawed).max()) > 0.0


@pytest.mark.parametrize("override,message", [
    ({"method.queue_size": 100}, "method.queue_size: expected 0 (no queue) or a positive multiple of "
                                 "train.batch_size (64), got 100"),
    ({"method.epsilon": 0.0}, "method.epsilon: expected a positive number, got 0.0"),
    ({"method.num_prototypes": 0}, "method.num_prototypes: expected a positive integer, got 0"),
])
def test_swav_config_errors_name_the_key(override, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(method_digits_config("swav", **override))
