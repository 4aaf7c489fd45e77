"""SwAV's online clustering: Sinkhorn-Knopp equipartitioned codes and the swapped-prediction loss.

Caron et al., "Unsupervised Learning of Visual Features by Contrasting
Cluster Assignments" (NeurIPS 2020), Sec. 3.1 and Algorithm 1, as
facebookresearch/swav `main_swav.py` (`distributed_sinkhorn`) and lightly's
`SwaVLoss`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.losses.contrastive import l2_normalize


def sinkhorn_knopp(scores: jax.Array, *, epsilon: float = 0.05, iterations: int = 3) -> jax.Array:
  """Soft codes Q [B, K] for prototype scores [B, K]: exp(scores / epsilon), then `iterations`
  alternate normalizations so that every prototype receives 1/K of the mass and every sample
  1/B, returned scaled by B (each row sums to 1).

  B is the whole array's batch: under `jit` with a batch-sharded `scores` the sums run over
  the global batch (XLA inserts the all-reduces the reference writes by hand). The global
  maximum is subtracted before the exponential; it cancels in the first normalization (the
  reference does not subtract it, and overflows for scores above ~4.4 at epsilon 0.05).

  >>> import numpy as np
  >>> scores = np.random.default_rng(0).uniform(-1, 1, size=(6, 3)).astype(np.float32)
  >>> q = sinkhorn_knopp(scores, epsilon=0.5, iterations=50)  # converged: 6 samples over 3 prototypes
  >>> bool(np.allclose(q.sum(1), 1, atol=1e-3)), bool(np.allclose(q.sum(0), 2, atol=1e-3))
  (True, True)
  """
  if scores.ndim != 2:
    raise ValueError(f"sinkhorn_knopp: expected scores [B, K], got shape {scores.shape}")
  s = jax.lax.stop_gradient(scores.astype(jnp.float32))
  q = jnp.exp((s - jnp.max(s)) / epsilon).T  # [K, B], as the reference
  k, b = q.shape
  q = q / jnp.sum(q)
  for _ in range(iterations):
    q = q / jnp.sum(q, axis=1, keepdims=True) / k  # each prototype: mass 1/K
    q = q / jnp.sum(q, axis=0, keepdims=True) / b  # each sample: mass 1/B
  return (q * b).T


def swav_loss(scores: jax.Array, codes: jax.Array, *, temperature: float = 0.1
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Swapped prediction: the code of each assigned crop is predicted from every other crop.

  loss = mean over assigned crops a of [ mean over crops v != a of
         -1/N sum_n sum_k codes[a, n, k] log softmax(scores[v, n] / temperature)_k ].
  The assigned crops are the first A of the V (the high-resolution ones); the remaining
  V - A (multi-crop's low-resolution crops) only predict.

  Args:
    scores: [V, N, K] cosine scores of every crop's embedding against the prototypes.
    codes: [A, N, K] Sinkhorn codes of the first A crops (`sinkhorn_knopp`; no gradient).
    temperature: the softmax temperature (0.1 in the paper).

  Returns: (loss, {"code_entropy": mean entropy of the codes, "code_usage": fraction of the
  prototypes that are the argmax code of some sample}).
  """
  v, a = scores.shape[0], codes.shape[0]
  if a < 1 or a > v or v < 2 or codes.shape[1:] != scores.shape[1:]:
    raise ValueError(f"swav_loss: expected scores [V >= 2, N, K] and codes [1 <= A <= V, N, K], got "
                     f"{scores.shape} and {codes.shape}")
  q = jax.lax.stop_gradient(codes.astype(jnp.float32))
  log_p = jax.nn.log_softmax(scores.astype(jnp.float32) / temperature, axis=-1)
  ce = -jnp.einsum("ank,vnk->av", q, log_p) / scores.shape[1]  # ce[a, v]
  others = jnp.arange(a)[:, None] != jnp.arange(v)[None, :]
  loss = jnp.mean(jnp.sum(jnp.where(others, ce, 0.0), axis=1) / (v - 1))
  entropy = -jnp.mean(jnp.sum(q * jnp.log(q + 1e-20), axis=-1))
  used = jnp.zeros(q.shape[-1], jnp.float32).at[jnp.argmax(q, -1).reshape(-1)].max(1.0)
  return loss, {"code_entropy": entropy, "code_usage": jnp.mean(used)}


def hubert_loss(projected: jax.Array, label_embs: jax.Array, targets: jax.Array, weights: jax.Array, *,
                temperature: float = 0.1) -> tuple[jax.Array, dict[str, jax.Array]]:
  """HuBERT's masked prediction (Hsu et al. 2021, eq. 2-3; fairseq `hubert.py` `compute_nce` with every
  cluster as a candidate): logits cos(projected_t, e_k) / temperature over the K cluster
  embeddings, cross-entropy against each frame's cluster id, mean over the weighted frames.

  Args:
    projected: [B, T, F] projected context. label_embs: [K, F].
    targets: [B, T] int cluster ids. weights: [B, T] (the masked valid frames: unmasked weight 0,
      HuBERT BASE).

  Returns:
    (loss, {"accuracy": top-1 on the weighted frames}).
  """
  p = l2_normalize(projected.astype(jnp.float32))
  e = l2_normalize(label_embs.astype(jnp.float32))
  logits = jnp.einsum("btf,kf->btk", p, e) / temperature
  log_p = jax.nn.log_softmax(logits, -1)
  nll = -jnp.take_along_axis(log_p, targets[..., None].astype(jnp.int32), -1)[..., 0]
  w = weights.astype(jnp.float32)
  n = jnp.maximum(jnp.sum(w), 1.0)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return jnp.sum(nll * w) / n, {"accuracy": jnp.sum(correct * w) / n}
