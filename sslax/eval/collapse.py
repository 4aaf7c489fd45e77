"""Collapse monitor: how spread out a batch of embeddings is.

- `std`: the mean over dimensions of the per-dimension standard deviation of
  the l2-normalized embeddings. About 1/sqrt(D) for well-spread embeddings
  and 0 for a collapsed (constant) output (Chen & He, "Exploring Simple
  Siamese Representation Learning", CVPR 2021, Sec. 4.1). `std_ratio` is
  std * sqrt(D), about 1 when healthy, so one threshold fits any D.
- `rank`: the effective rank exp(H(s / |s|_1)) of the singular values s of
  the embedding matrix (Roy & Vetterli 2007; RankMe, Garrido et al. 2023);
  1 for a constant output, up to min(N, D).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def collapse_metrics(z: jax.Array) -> dict[str, jax.Array]:
  """Args: z [N, D] embeddings (any float dtype). Returns scalars under `collapse/`."""
  z = jax.lax.stop_gradient(z).astype(jnp.float32)
  d = z.shape[-1]
  zn = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  std = jnp.mean(jnp.std(zn, axis=0))
  s = jnp.linalg.svd(z, compute_uv=False)
  p = s / jnp.maximum(jnp.sum(s), 1e-12) + 1e-12
  rank = jnp.exp(-jnp.sum(p * jnp.log(p)))
  return {"collapse/std": std, "collapse/std_ratio": std * jnp.sqrt(d), "collapse/rank": rank}


def collapse_alarm(metrics: dict, *, std_ratio_threshold: float, rank_threshold: float) -> bool:
  """True when logged collapse metrics fall below either threshold."""
  if "collapse/std_ratio" not in metrics:
    return False
  return bool(metrics["collapse/std_ratio"] < std_ratio_threshold or metrics["collapse/rank"] < rank_threshold)
