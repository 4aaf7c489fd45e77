"""Device meshes and the sharding of the train state, from config."""
from __future__ import annotations

import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sslax.mesh import make_mesh  # noqa: F401  (sslax.train.mesh.make_mesh)
from sslax.optim.masks import path_name as leaf_path  # noqa: F401  (sslax.train.mesh.leaf_path)


def _fsdp_spec(shape, axis: str, axis_size: int) -> PartitionSpec:
  """Shards the largest dimension divisible by the axis size (ties: the last), else replicates."""
  best = None
  for dim, size in enumerate(shape):
    if size % axis_size == 0 and size >= axis_size and (best is None or size >= shape[best]):
      best = dim
  if best is None:
    return PartitionSpec()
  return PartitionSpec(*[axis if d == best else None for d in range(len(shape))])


def leaf_spec(path: str, shape, mesh: Mesh, rules, *, axis: str = "data", min_size: int = 0) -> PartitionSpec:
  """The PartitionSpec the first matching rule gives a leaf (replicated when none matches).

  `rules` is a sequence of (regex, spec): the regex is searched in the leaf's
  path (e.g. 'params/encoder/layer1/0/conv1/kernel', and the optimizer's copy
  'opt_state/0/mu/encoder/layer1/0/conv1/kernel', so one rule covers a
  parameter and its optimizer state); spec is 'fsdp' (shard the largest
  dimension divisible by the size of `axis`), 'replicated', or a tuple of
  mesh axis names / None, one per dimension. Leaves with fewer than
  `min_size` elements stay replicated (biases, norms: sharding them saves
  nothing and costs a collective).
  """
  if not shape or int(np.prod(shape)) < min_size:
    return PartitionSpec()
  for pattern, spec in rules:
    if re.search(pattern, path):
      if spec == "replicated":
        return PartitionSpec()
      if spec == "fsdp":
        return _fsdp_spec(tuple(shape), axis, mesh.shape[axis])
      spec = tuple(spec)
      if len(spec) != len(shape):
        raise ValueError(f"sharding.rules: expected a spec of {len(shape)} entries for {path} {tuple(shape)}, "
                         f"got {spec!r}")
      for dim, name in enumerate(spec):
        names = () if name is None else (name,) if isinstance(name, str) else tuple(name)
        size = int(np.prod([mesh.shape[n] for n in names])) if names else 1
        if any(n not in mesh.shape for n in names) or shape[dim] % size:
          raise ValueError(f"sharding.rules: expected mesh axes {dict(mesh.shape)} dividing {path} "
                           f"{tuple(shape)} at dimension {dim}, got {spec!r}")
      return PartitionSpec(*spec)
  return PartitionSpec()


def any_sharded(shardings) -> bool:
  """Whether any leaf of a pytree of shardings is split (not fully replicated)."""
  return shardings is not None and any(
      not s.is_fully_replicated for s in jax.tree.leaves(shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding)))


def state_shardings(state, mesh: Mesh, sharding_config=None):
  """A pytree of NamedShardings for `state` (the TrainState), leaf by leaf, from `sharding.rules`
  (see `leaf_spec`). Without rules every leaf is replicated: pure data parallelism. With
  `(('.*', 'fsdp'),)` parameters and optimizer state are split over the data axis (FSDP / ZeRO-3:
  XLA gathers each weight where it is used and reduce-scatters its gradient)."""
  rules = tuple(sharding_config.get("rules", ())) if sharding_config is not None else ()
  axis = sharding_config.get("axis", "data") if sharding_config is not None else "data"
  min_size = int(sharding_config.get("min_size", 0)) if sharding_config is not None else 0
  if rules and axis not in mesh.shape:
    raise ValueError(f"sharding.axis: expected one of the mesh axes {list(mesh.shape)}, got {axis!r}")

  def one(path, leaf):
    shape = getattr(leaf, "shape", ())
    return NamedSharding(mesh, leaf_spec(leaf_path(path), shape, mesh, rules, axis=axis, min_size=min_size))

  return jax.tree_util.tree_map_with_path(one, state)
