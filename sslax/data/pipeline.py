"""grain pipelines and host -> global arrays.

The train pipeline is a deterministic function of (seed, position): grain's
`MapDataset.shuffle` draws a fresh permutation per epoch from `seed + epoch`,
each process reads its own rows of every global batch, and the iterator's
position is checkpointed with the train state (see `sslax.train.checkpoint`).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import grain
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def _as_arrays(record):
  return {k: np.asarray(v) for k, v in record.items()}


def pad_rows(x: np.ndarray, multiple: int, *, fill: str = "edge") -> np.ndarray:
  """`x` with rows appended until its length is a multiple of `multiple` (the device count):
  copies of the last row (`fill="edge"`, any input a model takes) or zeros (`fill="zeros"`, rows
  that hold no real token, so they add nothing to sums). Callers drop the padding's outputs."""
  x = np.asarray(x)
  pad = (-len(x)) % multiple
  if not pad:
    return x
  rows = np.repeat(x[-1:], pad, axis=0) if fill == "edge" else np.zeros((pad, *x.shape[1:]), x.dtype)
  return np.concatenate([x, rows])


class _ProcessRows(grain.MapDataset):
  """This process's rows of every global batch of `parent`: element i is row rows[i % b] of
  global batch i // b (b = len(rows)). Which rows a process feeds is fixed by the mesh
  (`process_rows`), so a run on N processes assembles the very global batches a 1-process run
  reads, and the iterator position (batches consumed) is the same number in every process."""

  def __init__(self, parent: grain.MapDataset, global_batch_size: int, rows: Sequence[int]):
    super().__init__(parent)
    self._global, self._rows = int(global_batch_size), tuple(int(r) for r in rows)

  def __len__(self) -> int:
    return len(self._parent) // self._global * len(self._rows)

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    batch, i = divmod(index, len(self._rows))
    return self._parent[batch * self._global + self._rows[i]]

  def __str__(self) -> str:
    return f"ProcessRows(global_batch_size={self._global}, rows={len(self._rows)})"


def process_rows(global_batch_size: int, mesh: Mesh | None = None) -> list[int]:
  """The rows of a global batch that this process's devices hold under `data_sharding(mesh)`, in
  order (what `jax.make_array_from_process_local_data` expects from it). Without a mesh: the
  process's contiguous block, as on a mesh built from `jax.devices()`."""
  n_proc, index = jax.process_count(), jax.process_index()
  if mesh is None:
    b = global_batch_size // n_proc
    return list(range(index * b, (index + 1) * b))
  rows = set()
  for idx in data_sharding(mesh).addressable_devices_indices_map((global_batch_size,)).values():
    rows.update(range(*idx[0].indices(global_batch_size)))
  return sorted(rows)


def train_dataset(source, *, global_batch_size: int, seed: int, transform=None,
                  num_threads: int = 4, mesh: Mesh | None = None) -> grain.IterDataset:
  """An endless, per-epoch reshuffled, per-process batched dataset.

  Args:
    source: a random-access source of records ({"image": [H, W, C] uint8, "label": int}, or audio).
    global_batch_size: examples per step over all processes; each process
      gets `global_batch_size // jax.process_count()` of them.
    seed: the shuffle seed (epoch e uses seed + e).
    transform: the per-record map (`method.inputs.transform()`); default: every field as an array.
    mesh: the mesh the batches go to; decides which rows of each global batch this process reads.

  Returns:
    A grain IterDataset of batched records, e.g. {"image": [b, H, W, C] uint8, "label": [b] int32}.
  """
  n_proc = jax.process_count()
  if global_batch_size % n_proc:
    raise ValueError(f"batch_size: expected a multiple of the process count {n_proc}, got {global_batch_size}")
  if len(source) < global_batch_size:
    raise ValueError(f"batch_size: the train split has {len(source)} examples, "
                     f"fewer than the global batch size {global_batch_size}")
  rows = process_rows(global_batch_size, mesh)
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat()
  if n_proc > 1:
    ds = _ProcessRows(ds, global_batch_size, rows)
  ds = ds.map(transform or _as_arrays).batch(len(rows), drop_remainder=True)
  return ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=256))


def eval_batches(source, *, batch_size: int, transform=None) -> Iterator[dict[str, np.ndarray]]:
  """One ordered pass over `source` in batches (the last may be short). Every process reads the
  same batches (evaluation sets are small); `from_full_batch` hands each device its rows."""
  ds = grain.MapDataset.source(source)
  ds = ds.map(transform or _as_arrays).batch(batch_size, drop_remainder=False)
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=4, prefetch_buffer_size=64)))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Batch arrays are split along their leading axis over every mesh axis."""
  return NamedSharding(mesh, P(mesh.axis_names))


def from_full_batch(x: np.ndarray, mesh: Mesh) -> jax.Array:
  """A global array sharded over the batch from a batch every process holds whole: each
  addressable device takes its own rows (so any number of processes gives the same array)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, data_sharding(mesh), lambda index: x[index])


def to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each process's local batch into global arrays sharded over the mesh.

  Uses `jax.make_array_from_process_local_data`, so the same code runs on one
  host and on many.
  """
  sharding = data_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


