import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sslax.losses import info_nce_loss, l2_normalize, nt_xent_loss


def nt_xent_top1_numpy(z1, z2):
  """The fraction of the 2N views whose most similar other view is their positive."""
  z = np.concatenate([z1, z2]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  sim = z @ z.T
  np.fill_diagonal(sim, -np.inf)
  n = len(z1)
  return np.mean(sim.argmax(1) == (np.arange(2 * n) + n) % (2 * n))


def nt_xent_numpy(z1, z2, t):
  """NT-Xent written out from eq. 1 of Chen et al. 2020, in float64."""
  z = np.concatenate([z1, z2]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n2 = len(z)
  n = n2 // 2
  sim = z @ z.T / t
  losses = []
  for i in range(n2):
    pos = (i + n) % n2
    denom = sum(np.exp(sim[i, k]) for k in range(n2) if k != i)
    losses.append(-np.log(np.exp(sim[i, pos]) / denom))
  return np.mean(losses)


@pytest.mark.parametrize("temperature", [0.07, 0.1, 0.5, 1.0])
def test_nt_xent_matches_formula(temperature):
  rng = np.random.default_rng(0)
  z1, z2 = rng.normal(size=(16, 8)), rng.normal(size=(16, 8))
  loss, aux = nt_xent_loss(jnp.asarray(z1), jnp.asarray(z2), temperature=temperature)
  np.testing.assert_allclose(float(loss), nt_xent_numpy(z1, z2, temperature), rtol=1e-5)
  want = nt_xent_top1_numpy(z1, z2)
  assert 0 < want < 1  # random views: some positives found, not all
  assert float(aux["accuracy"]) == pytest.approx(want)


def test_nt_xent_is_stable_at_low_temperature():
  z = jnp.asarray(np.random.default_rng(1).normal(size=(8, 4)))
  loss, _ = nt_xent_loss(z, z, temperature=1e-3)
  assert np.isfinite(float(loss))
  # identical views: the positive is the most similar candidate, so accuracy is 1
  assert float(nt_xent_loss(z, z, temperature=0.1)[1]["accuracy"]) == 1.0


def test_nt_xent_sharded_over_8_devices_equals_single_device(devices):
  rng = np.random.default_rng(2)
  z1, z2 = rng.normal(size=(64, 16)).astype(np.float32), rng.normal(size=(64, 16)).astype(np.float32)
  mesh = Mesh(np.array(devices), ("data",))
  shard = NamedSharding(mesh, P("data"))
  f = jax.jit(jax.value_and_grad(lambda a, b: nt_xent_loss(a, b, temperature=0.2)[0], argnums=(0, 1)))
  loss8, grads8 = f(jax.device_put(z1, shard), jax.device_put(z2, shard))
  loss1, grads1 = f(jax.device_put(z1, devices[0]), jax.device_put(z2, devices[0]))
  np.testing.assert_allclose(float(loss8), float(loss1), rtol=1e-6)
  np.testing.assert_allclose(float(loss8), nt_xent_numpy(z1, z2, 0.2), rtol=1e-5)
  for g8, g1 in zip(grads8, grads1):
    np.testing.assert_allclose(np.asarray(g8), np.asarray(g1), atol=1e-6)


def test_nt_xent_gradient_matches_finite_differences():
  rng = np.random.default_rng(3)
  z1, z2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
  g = jax.grad(lambda a: nt_xent_loss(a, jnp.asarray(z2), temperature=0.5)[0])(jnp.asarray(z1))
  eps = 1e-4
  fd = np.zeros_like(z1)
  for i in np.ndindex(z1.shape):
    zp, zm = z1.copy(), z1.copy()
    zp[i] += eps
    zm[i] -= eps
    fd[i] = (nt_xent_numpy(zp, z2, 0.5) - nt_xent_numpy(zm, z2, 0.5)) / (2 * eps)
  np.testing.assert_allclose(np.asarray(g), fd, atol=2e-3)


def test_l2_normalize_of_a_zero_row_has_the_finite_gradient_of_torch():
  """F.normalize's gradient: (I - n n^T) g / ||x|| for a row x, n = x / ||x||; an all-zero row
  stays zero with gradient g / eps (its norm is clamped), not NaN."""
  rng = np.random.default_rng(5)
  x = rng.normal(size=(4, 6)).astype(np.float32)
  x[2] = 0.0
  g = rng.normal(size=(4, 6)).astype(np.float32)
  out, vjp = jax.vjp(l2_normalize, jnp.asarray(x))
  (dx,) = vjp(jnp.asarray(g))
  assert np.all(np.isfinite(np.asarray(dx)))
  np.testing.assert_array_equal(np.asarray(out)[2], 0.0)
  np.testing.assert_allclose(np.asarray(dx)[2], g[2] / 1e-12, rtol=1e-6)
  for i in (0, 1, 3):
    xi = x[i].astype(np.float64)
    norm = np.linalg.norm(xi)
    n = xi / norm
    np.testing.assert_allclose(np.asarray(out)[i], n, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(dx)[i], (g[i] - n * (n @ g[i])) / norm, rtol=1e-5, atol=1e-6)
  # and through a loss: a zero embedding gives finite gradients
  grads = jax.grad(lambda a: nt_xent_loss(a, jnp.asarray(x[::-1].copy()), temperature=0.2)[0])(jnp.asarray(x))
  assert np.all(np.isfinite(np.asarray(grads)))


def test_info_nce_matches_formula_and_masks_invalid():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(5, 7))
  pos = np.array([0, 3, 6, 2, 1])
  valid = np.ones((5, 7), bool)
  valid[0, 5] = valid[2, 0] = False
  loss, aux = info_nce_loss(jnp.asarray(logits), jnp.asarray(pos), valid=jnp.asarray(valid))
  expected = np.mean([np.log(np.sum(np.exp(logits[i][valid[i]]))) - logits[i, pos[i]] for i in range(5)])
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  masked = np.where(valid, logits, -np.inf)
  assert float(aux["accuracy"]) == pytest.approx(np.mean(masked.argmax(1) == pos))


def test_losses_reject_bad_shapes():
  with pytest.raises(ValueError, match="z1, z2"):
    nt_xent_loss(jnp.zeros((4, 3)), jnp.zeros((5, 3)))
  with pytest.raises(ValueError, match="logits"):
    info_nce_loss(jnp.zeros((4,)), jnp.zeros((4,), jnp.int32))
