"""Orbax checkpoints of the whole TrainState plus the grain iterator position."""
from __future__ import annotations

import os
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

from sslax.train.state import TrainState


class Checkpointer:
  """An `ocp.CheckpointManager` under `<workdir>/checkpoints` with two items:
  `state` (the TrainState pytree, sharded as it is) and `data` (the grain
  iterator state, one JSON per process). Saves are asynchronous; a step is
  committed only when both items are written (Orbax's atomic rename).
  """

  def __init__(self, workdir: str, *, save_every: int, max_to_keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    options = ocp.CheckpointManagerOptions(save_interval_steps=max(1, save_every),
                                           max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, state: TrainState, data_iterator: Any, *, force: bool = False) -> bool:
    step = int(jax.device_get(state.step))
    if not force and not self.manager.should_save(step):
      return False
    if step in self.manager.all_steps():
      return False  # already committed (e.g. the final forced save right after a periodic one)
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)),
        force=force)

  def restore(self, abstract_state: TrainState, data_iterator: Any, step: int | None = None):
    """Restores into the shapes, dtypes and shardings of `abstract_state`; returns (state, iterator)."""
    step = self.latest_step() if step is None else step
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored["state"], restored["data"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
