"""The device mesh a run's config names: a leaf module, so that the train loop and a method whose
loss needs the mesh itself (SigLIP's chunked loss, under `shard_map`) build the same one."""
from __future__ import annotations

from typing import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh


def make_mesh(axes: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Builds a mesh from {axis name: size}; one size may be -1 to take the remaining devices.

  The default config is {"data": -1}: pure data parallelism over every device.
  Fixed sizes multiplying to fewer devices than there are use the first ones.

  Examples:
    >>> make_mesh({"data": -1}).axis_names
    ('data',)
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
