"""Self-distillation losses against a stop-gradient target: BYOL and SimSiam."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.losses.contrastive import l2_normalize


def _cosine(p, z):
  return jnp.sum(l2_normalize(p.astype(jnp.float32)) * l2_normalize(z.astype(jnp.float32)), axis=-1)


def byol_loss(p1: jax.Array, p2: jax.Array, z1: jax.Array, z2: jax.Array) -> tuple[jax.Array, dict]:
  """BYOL's symmetrized normalized regression (Grill et al. 2020, eq. 2):
  mean(2 - 2 cos(p1, sg(z2))) + mean(2 - 2 cos(p2, sg(z1))).

  Args: p1, p2 [N, D] online predictions of views 1, 2; z1, z2 [N, D] target
  projections of views 1, 2 (gradients are stopped here).

  Examples:
    Predictions equal to the targets give the minimum, 0:

    >>> import jax.numpy as jnp
    >>> z = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    >>> abs(float(byol_loss(z, z, z, z)[0])) < 1e-6
    True
  """
  z1, z2 = jax.lax.stop_gradient(z1), jax.lax.stop_gradient(z2)
  c12, c21 = _cosine(p1, z2), _cosine(p2, z1)
  loss = jnp.mean(2 - 2 * c12) + jnp.mean(2 - 2 * c21)
  return loss, {"cosine": (jnp.mean(c12) + jnp.mean(c21)) / 2}


def simsiam_loss(p1: jax.Array, p2: jax.Array, z1: jax.Array, z2: jax.Array) -> tuple[jax.Array, dict]:
  """SimSiam's symmetrized negative cosine with stop-gradient (Chen & He, CVPR 2021, eq. 4):
  -cos(p1, sg(z2)) / 2 - cos(p2, sg(z1)) / 2, averaged over the batch. Minimum -1."""
  z1, z2 = jax.lax.stop_gradient(z1), jax.lax.stop_gradient(z2)
  loss = -(jnp.mean(_cosine(p1, z2)) + jnp.mean(_cosine(p2, z1))) / 2
  return loss, {}
