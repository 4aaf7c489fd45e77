"""SigLIP's pairwise sigmoid loss, dense and chunked across devices.

Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image
Pre-Training" (ICCV 2023), Algorithm 1: every image-text pair of the global
batch is a binary classification, positive on the diagonal:

  loss = -1/N sum_i sum_j log sigmoid(z_ij (t <x_i, y_j> + b)),  z_ij = 1 if i == j else -1

with x, y l2-normalized, t = exp(t') and b learned (big_vision's
`trainers/proj/image_text/siglip.py`: the same sum over texts, mean over images).

The dense form builds the [N, N] logits of the global batch. The chunked form
(`siglip_loss_chunked`) is the paper's Section 3.3 efficient implementation,
which big_vision leaves as a TODO: under `shard_map` each device scores its
b = N / devices images against one device's texts at a time, passing the text
shards around the ring with `ppermute`, so no device ever holds more than a
[b, b] block of logits (and the backward pass recomputes each block instead
of keeping it). Same loss and gradients as the dense form.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

from sslax.losses.contrastive import check_paired, l2_normalize


def _block_loglik(image, text, t, b, positive_diagonal: bool) -> jax.Array:
  """sum_ij log sigmoid(z_ij (t <x_i, y_j> + b)) of one block; positives on its diagonal if any."""
  logits = t * (image @ text.T) + b
  if positive_diagonal:
    signs = 2.0 * jnp.eye(image.shape[0], text.shape[0], dtype=logits.dtype) - 1.0
  else:
    signs = -jnp.ones_like(logits)
  return jnp.sum(jax.nn.log_sigmoid(signs * logits))


def siglip_loss(image: jax.Array, text: jax.Array, *, scale, bias) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The pairwise sigmoid loss over the (global) batch, dense [N, N] logits.

  Args:
    image: [N, D] image embeddings; text: [N, D] text embeddings (row i pairs with row i);
      l2-normalized here, in float32.
    scale: t > 0, the logit scale (SigLIP learns t' with t = exp(t'), init t = 10).
    bias: b, the logit bias (init -10).

  Returns: (loss, {"accuracy": image->text top-1, "positive_logit": mean diagonal logit}).
  """
  check_paired(image, text)
  image = l2_normalize(image.astype(jnp.float32))
  text = l2_normalize(text.astype(jnp.float32))
  n = image.shape[0]
  loss = -_block_loglik(image, text, scale, bias, True) / n
  sim = image @ text.T
  accuracy = jnp.mean((jnp.argmax(sim, axis=1) == jnp.arange(n)).astype(jnp.float32))
  return loss, {"accuracy": accuracy, "positive_logit": scale * jnp.mean(jnp.diagonal(sim)) + bias}


def siglip_loss_chunked(image: jax.Array, text: jax.Array, *, scale, bias, mesh: Mesh,
                        axis_names: tuple[str, ...] | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`siglip_loss` with the text shards passed around the devices (module docstring).

  Args:
    image: [N, D] global array sharded over the batch on `mesh` (as the train step's batch:
      split over `axis_names`, default every axis of the mesh).
    text: [N, D], sharded as `image`.
    scale: scalar (replicated).
    bias: scalar (replicated).
    mesh: the mesh the batch is sharded on.
    axis_names: the mesh axes the batch is split over (default: all).

  Returns: the loss and aux of `siglip_loss` (accuracy computed in the same ring pass).
  """
  check_paired(image, text)
  axes = tuple(mesh.axis_names) if axis_names is None else tuple(axis_names)
  size = 1
  for a in axes:
    size *= mesh.shape[a]
  n = image.shape[0]
  if n % size:
    raise ValueError(f"image: expected a batch divisible by the {size} devices of axes {axes}, got {n}")

  def local(x, y, t, b):
    x = l2_normalize(x.astype(jnp.float32))
    y = l2_normalize(y.astype(jnp.float32))
    ring = [(j, (j + 1) % size) for j in range(size)]
    own = lax.axis_index(axes)
    # the diagonal block: positives; then size - 1 blocks of negatives as the texts go round
    loglik = _block_loglik(x, y, t, b, True)
    sim = x @ y.T
    best, best_at = jnp.max(sim, axis=1), jnp.argmax(sim, axis=1) + own * x.shape[0]
    positive = jnp.diagonal(sim)

    @jax.checkpoint  # keep only the text shard per block for the backward pass, not its logits
    def negatives(y_block, t, b):
      return _block_loglik(x, y_block, t, b, False), x @ y_block.T

    def body(carry, _):
      y_block, holder, loglik, best, best_at = carry
      y_block = lax.ppermute(y_block, axes, ring)
      holder = (holder - 1) % size  # the device whose texts just arrived
      block_loglik, block_sim = negatives(y_block, t, b)
      block_best = jnp.max(block_sim, axis=1)
      # argmax over the whole row, ties to the lowest column as the dense argmax
      at = jnp.argmax(block_sim, axis=1) + holder * x.shape[0]
      take = (block_best > best) | ((block_best == best) & (at < best_at))
      return (y_block, holder, loglik + block_loglik, jnp.where(take, block_best, best),
              jnp.where(take, at, best_at)), None

    if size > 1:
      (_, _, loglik, best, best_at), _ = lax.scan(body, (y, own, loglik, best, best_at), None, length=size - 1)
    rows = own * x.shape[0] + jnp.arange(x.shape[0])
    total = lax.psum(loglik, axes)
    correct = lax.psum(jnp.sum((best_at == rows).astype(jnp.float32)), axes)
    positive = lax.psum(jnp.sum(positive), axes)
    return -total / n, correct / n, t * positive / n + b

  fn = jax.shard_map(local, mesh=mesh, in_specs=(P(axes), P(axes), P(), P()), out_specs=(P(), P(), P()))
  loss, accuracy, positive_logit = fn(image, text, jnp.asarray(scale, jnp.float32), jnp.asarray(bias, jnp.float32))
  return loss, {"accuracy": accuracy, "positive_logit": positive_logit}
