"""Batch-axis sharding constraints on activations, so that FSDP gathers weights, not activations.

Under FSDP (`sharding.rules=(('.*', 'fsdp'),)`) a kernel [in, out] arrives split
over the data axis along one dimension while the activations are split along
the batch. Left to itself, XLA's SPMD partitioner often resolves the product
by resharding the activation to match the weight (all-to-alls and gathers of
activation size, every layer, forward and backward) instead of all-gathering
the weight, which is what FSDP means. A sharding constraint on each layer's
output, "leading (batch) axis over the mesh's data axes", leaves it one
cheap choice: gather the weight, compute the local rows, and reduce-scatter
the weight gradient. MaxText and big_vision do the same with logical axis
rules; sslax's models are batch-first everywhere, so one rule suffices.

`install(model)` wraps the `dot_general` of every `nnx.Linear` / `LinearGeneral`
and the `conv_general_dilated` of every `nnx.Conv` (after `set_conv_impl`, so
the im2col path is kept); the wrappers constrain only inside
`batch_sharded(mesh, axes)`, the context the train step traces the loss in.
Outside it (eager calls, evaluation, tests) they are the plain functions.
Flax NNX has no interceptors (linen's `nn.intercept_methods`), hence the
wrapping; the constraint is skipped for a tensor whose leading dimension the
data axes do not divide.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from typing import Sequence

import jax
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("sslax_batch_sharded", default=None)


@contextlib.contextmanager
def batch_sharded(mesh: Mesh, axes: Sequence[str] | None = None):
  """Within this block (while tracing), layer outputs are constrained to be split along their
  leading axis over `axes` of `mesh` (default: every axis, as the batch is)."""
  axes = tuple(mesh.axis_names if axes is None else axes)
  token = _ACTIVE.set((mesh, axes, math.prod(mesh.shape[a] for a in axes)))
  try:
    yield
  finally:
    _ACTIVE.reset(token)


def constrain_batch(x: jax.Array) -> jax.Array:
  """`x` constrained to the batch sharding of the active `batch_sharded` block (`x` itself outside
  one, or when its leading dimension is not a multiple of the data axes' size)."""
  active = _ACTIVE.get()
  if active is None or getattr(x, "ndim", 0) == 0:
    return x
  mesh, axes, shards = active
  if x.shape[0] % shards:
    return x
  return lax.with_sharding_constraint(x, NamedSharding(mesh, P(axes, *([None] * (x.ndim - 1)))))


@functools.cache
def _constrained(fn):
  """`fn` with its output constrained; one wrapper per function, so that models built twice have
  equal graph definitions (the jit cache compares them)."""

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    return constrain_batch(fn(*args, **kwargs))

  wrapped.__sslax_constrained__ = fn
  return wrapped


def install(model: nnx.Module) -> nnx.Module:
  """Wraps every Linear / LinearGeneral product and Conv of `model` (in place; idempotent); returns it."""
  for _, node in nnx.iter_graph(model):
    if isinstance(node, (nnx.Linear, nnx.LinearGeneral)) and getattr(node, "dot_general_cls", None) is None:
      fn = node.dot_general or lax.dot_general
      if not hasattr(fn, "__sslax_constrained__"):
        node.dot_general = _constrained(fn)
    elif isinstance(node, nnx.Conv):
      fn = node.conv_general_dilated
      if not hasattr(fn, "__sslax_constrained__"):
        node.conv_general_dilated = _constrained(fn)
  return model
