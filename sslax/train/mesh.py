"""Device meshes and the sharding of the train state, from config."""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sslax.optim.masks import path_name as leaf_path  # noqa: F401  (sslax.train.mesh.leaf_path)


def make_mesh(axes: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Builds a mesh from {axis name: size}; one size may be -1 to take the remaining devices.

  The default config is {"data": -1}: pure data parallelism over every device.
  Fixed sizes multiplying to fewer devices than there are use the first ones.
  """
  devices = list(devices if devices is not None else jax.devices())
  names, sizes = list(axes.keys()), [int(s) for s in axes.values()]
  if not names:
    raise ValueError("mesh: expected at least one axis, got {}")
  if sizes.count(-1) > 1:
    raise ValueError(f"mesh: expected at most one axis of size -1, got {dict(axes)}")
  known = int(np.prod([s for s in sizes if s != -1]))
  if any(s == 0 or s < -1 for s in sizes) or len(devices) % known:
    raise ValueError(f"mesh: expected axis sizes whose product divides the {len(devices)} devices, got {dict(axes)}")
  sizes = [len(devices) // known if s == -1 else s for s in sizes]
  if int(np.prod(sizes)) > len(devices):
    raise ValueError(f"mesh: expected axis sizes multiplying to at most {len(devices)} devices, got {dict(axes)}")
  # Fewer than all devices (e.g. {"data": 4} on 8) uses the first ones: resuming a run on a
  # smaller slice, or a quick run that leaves devices free.
  return Mesh(np.asarray(devices[:int(np.prod(sizes))]).reshape(sizes), tuple(names))


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
