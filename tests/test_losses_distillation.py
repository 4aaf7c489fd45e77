"""BYOL, SimSiam, VICReg and Barlow Twins against their formulas written out in NumPy (float64)."""
import jax
import jax.numpy as jnp
import numpy as np

from sslax.losses import barlow_twins_loss, byol_loss, simsiam_loss, vicreg_loss


def _rand(*shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape)


def _cos(a, b):
  return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_byol_and_simsiam_match_formula_and_stop_gradient():
  p1, p2, z1, z2 = (_rand(8, 6, seed=i) for i in range(4))
  loss, _ = byol_loss(*map(jnp.asarray, (p1, p2, z1, z2)))
  np.testing.assert_allclose(float(loss), np.mean(2 - 2 * _cos(p1, z2)) + np.mean(2 - 2 * _cos(p2, z1)), rtol=1e-5)
  loss, _ = simsiam_loss(*map(jnp.asarray, (p1, p2, z1, z2)))
  np.testing.assert_allclose(float(loss), -(np.mean(_cos(p1, z2)) + np.mean(_cos(p2, z1))) / 2, rtol=1e-5)
  for fn in (byol_loss, simsiam_loss):
    gz = jax.grad(lambda z: fn(jnp.asarray(p1), jnp.asarray(p2), z, z)[0])(jnp.asarray(z1))
    assert float(jnp.abs(gz).max()) == 0.0  # targets carry no gradient


def test_vicreg_matches_formula():
  z1, z2 = _rand(16, 5, seed=1), _rand(16, 5, seed=2) * 0.5
  n, d = z1.shape
  inv = np.mean((z1 - z2) ** 2)

  def std_term(z):
    return np.mean(np.maximum(0, 1 - np.sqrt(z.var(0, ddof=1) + 1e-4)))

  def cov_term(z):
    zc = z - z.mean(0)
    cov = zc.T @ zc / (n - 1)
    return (np.sum(cov ** 2) - np.sum(np.diag(cov) ** 2)) / d

  expected = 25 * inv + 25 * (std_term(z1) + std_term(z2)) / 2 + (cov_term(z1) + cov_term(z2))
  loss, aux = vicreg_loss(jnp.asarray(z1), jnp.asarray(z2))
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  np.testing.assert_allclose(float(aux["invariance"]), inv, rtol=1e-5)


def test_barlow_twins_matches_formula():
  z1, z2 = _rand(32, 4, seed=3), _rand(32, 4, seed=4)
  bn = lambda z: (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)
  c = bn(z1).T @ bn(z2) / 32
  expected = np.sum((np.diag(c) - 1) ** 2) + 0.0051 * (np.sum(c ** 2) - np.sum(np.diag(c) ** 2))
  loss, _ = barlow_twins_loss(jnp.asarray(z1), jnp.asarray(z2))
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  perfect, _ = barlow_twins_loss(jnp.asarray(z1), jnp.asarray(z1), lambd=0.0)
  assert float(perfect) < 1e-6  # identical standardized views: diagonal is exactly 1
