"""Redundancy-reduction losses: VICReg and Barlow Twins."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _off_diagonal(m):
  return m - jnp.diag(jnp.diag(m))


def vicreg_loss(z1: jax.Array, z2: jax.Array, *, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0, eps: float = 1e-4) -> tuple[jax.Array, dict]:
  """VICReg (Bardes, Ponce, LeCun, ICLR 2022), as the reference implementation:

  invariance = mean squared error between z1 and z2;
  variance = mean(relu(1 - sqrt(var + eps))) per branch, averaged over branches
  (unbiased variance over the batch);
  covariance = sum of squared off-diagonal covariances / D, summed over branches.

  Args: z1, z2 [N, D] expander outputs of two views. Returns (weighted sum, terms).
  """
  z1, z2 = z1.astype(jnp.float32), z2.astype(jnp.float32)
  n, d = z1.shape
  invariance = jnp.mean(jnp.square(z1 - z2))
  z1c, z2c = z1 - z1.mean(0), z2 - z2.mean(0)
  std1 = jnp.sqrt(jnp.var(z1c, axis=0, ddof=1) + eps)
  std2 = jnp.sqrt(jnp.var(z2c, axis=0, ddof=1) + eps)
  variance = (jnp.mean(jax.nn.relu(1 - std1)) + jnp.mean(jax.nn.relu(1 - std2))) / 2
  cov1, cov2 = z1c.T @ z1c / (n - 1), z2c.T @ z2c / (n - 1)
  covariance = (jnp.sum(jnp.square(_off_diagonal(cov1))) + jnp.sum(jnp.square(_off_diagonal(cov2)))) / d
  loss = sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
  return loss, {"invariance": invariance, "variance": variance, "covariance": covariance}


def barlow_twins_loss(z1: jax.Array, z2: jax.Array, *, lambd: float = 0.0051,
                      eps: float = 1e-5) -> tuple[jax.Array, dict]:
  """Barlow Twins (Zbontar et al., ICML 2021, eq. 1): the cross-correlation of the
  batch-normalized embeddings (biased variance, no affine, as BatchNorm1d) is
  pushed to the identity: sum((1 - C_ii)^2) + lambda * sum_{i != j} C_ij^2.

  Args: z1, z2 [N, D] projector outputs. lambd: 0.0051 in the reference code.
  """
  z1, z2 = z1.astype(jnp.float32), z2.astype(jnp.float32)
  n = z1.shape[0]
  bn = lambda z: (z - z.mean(0)) / jnp.sqrt(z.var(0) + eps)
  c = bn(z1).T @ bn(z2) / n
  on_diag = jnp.sum(jnp.square(jnp.diag(c) - 1))
  off_diag = jnp.sum(jnp.square(_off_diagonal(c)))
  return on_diag + lambd * off_diag, {"on_diagonal": on_diag, "off_diagonal": off_diag}
