"""word2vec's objective: negative sampling (Mikolov et al. 2013b, "Distributed Representations of
Words and Phrases and their Compositionality", eq. 4), summed as word2vec.c's TrainModelThread
takes it pair by pair. The pairs, windows and noise words come from `sslax.methods.word2vec`."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def negative_sampling_loss(inputs: jax.Array, target_vectors: jax.Array, noise_vectors: jax.Array,
                           noise_ok: jax.Array, weight: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Sum over positives of weight * (-log s(v.u) - sum_k ok_k log s(-v.u_k)) (Mikolov et al. 2013b, eq. 4).

  Args:
    inputs: [..., D] the predicting vectors v; target_vectors: [..., D] u of the target;
    noise_vectors: [..., K, D]; noise_ok: [..., K] bool (False: a noise word equal to the target);
    weight: [...] 1 for a real positive, 0 for none.

  Returns: (the sum, the number of positives).
  """
  pos = jnp.sum(inputs * target_vectors, -1)
  neg = jnp.einsum("...d,...kd->...k", inputs, noise_vectors)
  per = -jax.nn.log_sigmoid(pos) - jnp.sum(jnp.where(noise_ok, jax.nn.log_sigmoid(-neg), 0.0), -1)
  return jnp.sum(per * weight), jnp.sum(weight)
