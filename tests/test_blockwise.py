"""Blockwise InfoNCE: the dense losses and gradients, with O(N x block) memory."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.losses import blockwise_logsumexp, clip_loss, moco_loss, moco_v3_loss, nt_xent_loss
from test_losses import nt_xent_numpy


def _rand(seed, *shapes):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=s).astype(np.float32)) for s in shapes]


@pytest.mark.parametrize("block", [1, 7, 16, 100])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_blockwise_logsumexp_matches_numpy(block, exclude_self):
  a, c = _rand(0, (12, 5), (30, 5))
  lse, best, col = blockwise_logsumexp(a, c, temperature=0.3, block_size=block, exclude_self=exclude_self)
  logits = np.asarray(a, np.float64) @ np.asarray(c, np.float64).T / 0.3
  if exclude_self:
    logits[np.arange(12), np.arange(12)] = -np.inf
  m = logits.max(axis=1)
  np.testing.assert_allclose(np.asarray(lse), m + np.log(np.exp(logits - m[:, None]).sum(axis=1)), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(best), m, rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(col), logits.argmax(axis=1))


def _check_same(dense, blockwise, args, atol=1e-5):
  (l0, aux0), g0 = jax.value_and_grad(dense, argnums=tuple(range(len(args))), has_aux=True)(*args)
  (l1, aux1), g1 = jax.value_and_grad(blockwise, argnums=tuple(range(len(args))), has_aux=True)(*args)
  np.testing.assert_allclose(float(l1), float(l0), rtol=1e-6)
  assert float(aux1["accuracy"]) == float(aux0["accuracy"])
  for a, b in zip(g1, g0):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol)


@pytest.mark.parametrize("block", [1, 5, 8, 74, 500])
def test_nt_xent_blockwise_equals_dense_and_formula(block):
  z1, z2 = _rand(1, (37, 16), (37, 16))
  _check_same(lambda a, b: nt_xent_loss(a, b, temperature=0.2),
              lambda a, b: nt_xent_loss(a, b, temperature=0.2, block_size=block), (z1, z2))
  loss, _ = nt_xent_loss(z1, z2, temperature=0.2, block_size=block)
  np.testing.assert_allclose(float(loss), nt_xent_numpy(np.asarray(z1), np.asarray(z2), 0.2), rtol=1e-5)


@pytest.mark.parametrize("block", [7, 64])
def test_moco_blockwise_equals_dense(block):
  q, k, queue = _rand(2, (12, 16), (12, 16), (64, 16))
  queue = queue / jnp.linalg.norm(queue, axis=1, keepdims=True)
  _check_same(lambda q: moco_loss(q, k, queue, temperature=0.2),
              lambda q: moco_loss(q, k, queue, temperature=0.2, block_size=block), (q,))
  q1, q2, k1, k2 = _rand(3, *[(12, 16)] * 4)
  _check_same(lambda a, b: moco_v3_loss(a, b, k1, k2, temperature=0.2),
              lambda a, b: moco_v3_loss(a, b, k1, k2, temperature=0.2, block_size=block), (q1, q2))


def clip_numpy(image, text, scale):
  """CLIP's symmetric cross-entropy (Radford et al. 2021, Figure 3) in float64."""
  i = image / np.linalg.norm(image, axis=1, keepdims=True)
  t = text / np.linalg.norm(text, axis=1, keepdims=True)
  logits = scale * i @ t.T
  def ce(x):
    return np.mean(np.log(np.exp(x).sum(axis=1)) - np.diag(x))
  return (ce(logits) + ce(logits.T)) / 2


@pytest.mark.parametrize("block", [None, 3, 10])
def test_clip_loss_matches_formula_and_learns_its_scale(block):
  image, text = _rand(4, (10, 8), (10, 8))
  loss, _ = clip_loss(image, text, logit_scale=14.3, block_size=block)
  np.testing.assert_allclose(float(loss), clip_numpy(np.asarray(image, np.float64), np.asarray(text, np.float64), 14.3),
                             rtol=1e-5)
  # the scale is a traced array (CLIP learns it): same gradient blockwise and dense
  _check_same(lambda s, a, b: clip_loss(a, b, logit_scale=s),
              lambda s, a, b: clip_loss(a, b, logit_scale=s, block_size=block or 4), (jnp.float32(14.3), image, text))


def test_blockwise_sharded_over_8_devices_equals_dense(devices):
  z1, z2 = _rand(5, (64, 16), (64, 16))
  shard = NamedSharding(Mesh(np.array(devices), ("data",)), P("data"))
  dense = jax.jit(jax.value_and_grad(lambda a, b: nt_xent_loss(a, b, temperature=0.2)[0], argnums=(0, 1)))
  block = jax.jit(jax.value_and_grad(lambda a, b: nt_xent_loss(a, b, temperature=0.2, block_size=32)[0],
                                     argnums=(0, 1)))
  l0, g0 = dense(z1, z2)
  l8, g8 = block(jax.device_put(z1, shard), jax.device_put(z2, shard))
  np.testing.assert_allclose(float(l8), float(l0), rtol=1e-6)
  for a, b in zip(g8, g0):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_blockwise_memory_is_linear_in_the_batch():
  """Compiled temporaries at batch 4,096 (8,192 rows): the dense loss holds [8192, 8192] matrices."""
  def temp_bytes(block):
    f = jax.jit(jax.grad(lambda a, b: nt_xent_loss(a, b, temperature=0.2, block_size=block)[0], argnums=(0, 1)))
    z = jax.ShapeDtypeStruct((4096, 128), jnp.float32)
    return f.lower(z, z).compile().memory_analysis().temp_size_in_bytes
  dense, blockwise = temp_bytes(None), temp_bytes(256)
  assert dense > 8192 * 8192 * 4  # at least one full similarity matrix
  assert blockwise < 8192 * 256 * 4 * 8, (dense, blockwise)  # a few [8192, 256] blocks


def test_bad_block_size_is_named():
  z1, z2 = _rand(6, (4, 3), (4, 3))
  with pytest.raises(ValueError, match="block_size: expected a positive int, got 0"):
    nt_xent_loss(z1, z2, block_size=0)
