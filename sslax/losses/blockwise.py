"""Row-wise log-sum-exp of a similarity matrix computed in column blocks.

Contrastive losses need, for every anchor row i, logsumexp_j(<a_i, c_j> / T)
over every candidate j of the global batch. Written densely that is an
[N, M] matrix, kept for the backward pass as well: at N = M = 64k it is 16 GB
in float32. Here the matrix is never materialized: the forward pass scans
over blocks of `block_size` candidates with an online (running max, running
sum) log-sum-exp, as FlashAttention does for the softmax of attention, and a
custom VJP recomputes each block in the backward pass, so memory is
O(N x block_size) and the loss and gradients are the dense ones (the same
sums, in another order).

Neither optax nor JAX has this for contrastive losses (the memory-efficient
attention kernels fold in a value matrix and do not expose the row
log-sum-exp of a masked similarity matrix), so it is written here.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# A finite "minus infinity" for the running max, so exp(m_old - m_new) is 0, not NaN.
_NEG = -1e30


def _blocks(candidates: jax.Array, block_size: int) -> tuple[jax.Array, int]:
  """[M, D] -> ([M_pad / block, block, D], M), zero rows padding the last block."""
  m = candidates.shape[0]
  pad = (-m) % block_size
  if pad:
    candidates = jnp.pad(candidates, ((0, pad), (0, 0)))
  return candidates.reshape(-1, block_size, candidates.shape[1]), m


def _block_logits(anchors, block, start, m, temperature, exclude_self):
  """Logits of all anchors against one candidate block, invalid columns at -inf."""
  logits = anchors @ block.T / temperature
  col = start + jnp.arange(block.shape[0])
  valid = jnp.broadcast_to(col[None, :] < m, logits.shape)
  if exclude_self:
    valid = valid & (col[None, :] != jnp.arange(anchors.shape[0])[:, None])
  return jnp.where(valid, logits, -jnp.inf), col


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _lse(anchors, candidates, temperature, block_size, exclude_self):
  return _lse_forward(anchors, candidates, temperature, block_size, exclude_self)


def _lse_forward(anchors, candidates, temperature, block_size, exclude_self):
  blocks, m = _blocks(candidates, block_size)
  n = anchors.shape[0]

  def body(carry, xs):
    run_max, run_sum, best, best_col = carry
    block, start = xs
    logits, col = _block_logits(anchors, block, start, m, temperature, exclude_self)
    block_max = jnp.max(logits, axis=1)
    new_max = jnp.maximum(run_max, block_max)
    run_sum = run_sum * jnp.exp(run_max - new_max) + jnp.sum(jnp.exp(logits - new_max[:, None]), axis=1)
    # Ties keep the earlier column, as argmax over the dense row does.
    better = block_max > best
    best_col = jnp.where(better, col[jnp.argmax(logits, axis=1)], best_col)
    return (new_max, run_sum, jnp.maximum(best, block_max), best_col), None

  starts = jnp.arange(blocks.shape[0]) * block_size
  init = (jnp.full((n,), _NEG, anchors.dtype), jnp.zeros((n,), anchors.dtype),
          jnp.full((n,), -jnp.inf, anchors.dtype), jnp.zeros((n,), jnp.int32))
  (run_max, run_sum, best, best_col), _ = jax.lax.scan(body, init, (blocks, starts))
  return run_max + jnp.log(run_sum), best, best_col


def _lse_fwd(anchors, candidates, temperature, block_size, exclude_self):
  out = _lse_forward(anchors, candidates, temperature, block_size, exclude_self)
  return out, (anchors, candidates, out[0])


def _lse_bwd(temperature, block_size, exclude_self, residuals, cotangents):
  anchors, candidates, lse = residuals
  g = cotangents[0]  # the max and its column are not differentiated (see blockwise_logsumexp)
  blocks, m = _blocks(candidates, block_size)

  def body(d_anchors, xs):
    block, start = xs
    logits, _ = _block_logits(anchors, block, start, m, temperature, exclude_self)
    d_logits = jnp.exp(logits - lse[:, None]) * g[:, None] / temperature  # softmax; 0 where invalid
    return d_anchors + d_logits @ block, d_logits.T @ anchors

  starts = jnp.arange(blocks.shape[0]) * block_size
  d_anchors, d_blocks = jax.lax.scan(body, jnp.zeros_like(anchors), (blocks, starts))
  return d_anchors, d_blocks.reshape(-1, anchors.shape[1])[:m]


_lse.defvjp(_lse_fwd, _lse_bwd)


def blockwise_logsumexp(
    anchors: jax.Array,
    candidates: jax.Array,
    *,
    temperature: float,
    block_size: int,
    exclude_self: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Row log-sum-exp of `anchors @ candidates.T / temperature`, never holding the matrix.

  Args:
    anchors: [N, D] rows (computed in float32).
    candidates: [M, D] columns, scanned `block_size` at a time (the last
      block padded and masked when block_size does not divide M).
    temperature: T > 0.
    block_size: candidates per block; memory is O(N x block_size) in the
      forward and the backward pass.
    exclude_self: leave out column i of row i (anchors and candidates are
      the same embeddings, as in NT-Xent); needs N <= M.

  Returns:
    (lse [N], max_logit [N], argmax_column [N] int32). Only `lse` is
    differentiated (custom VJP: d lse_i / d logit_ij = softmax_ij, each
    block recomputed); `max_logit` and `argmax_column` are for accuracy
    metrics and are returned without gradient.
  """
  if anchors.ndim != 2 or candidates.ndim != 2 or anchors.shape[1] != candidates.shape[1]:
    raise ValueError(f"anchors, candidates: expected [N, D] and [M, D], got {anchors.shape} and {candidates.shape}")
  if not (isinstance(block_size, int) and block_size > 0):
    raise ValueError(f"block_size: expected a positive int, got {block_size!r}")
  block_size = min(block_size, candidates.shape[0])
  lse, best, best_col = _lse(anchors.astype(jnp.float32), candidates.astype(jnp.float32),
                             float(temperature), block_size, bool(exclude_self))
  return lse, jax.lax.stop_gradient(best), best_col
