"""Orbax checkpoints of the whole TrainState plus the grain iterator position."""
from __future__ import annotations

import json
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

  def should_save(self, step: int) -> bool:
    return self.manager.should_save(step)

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


FINGERPRINT_FILE = "run_fingerprint.json"


def run_fingerprint(config) -> dict[str, Any]:
  """The config values a checkpoint's data position and randomness depend on, flattened.

  Resuming with another seed, global batch size, dataset or augmentation
  would silently change which examples come next and how they are augmented.
  """
  flat = {"seed": config.seed, "train.batch_size": config.train.batch_size}
  for section in ("data", "augment", "augment_view2"):
    node = config.get(section)
    if node is None:
      continue
    for key, value in _flatten(node.to_dict(), section).items():
      flat[key] = list(value) if isinstance(value, tuple) else value
  return flat


def _flatten(d, prefix):
  out = {}
  for key, value in d.items():
    if isinstance(value, dict):
      out.update(_flatten(value, f"{prefix}.{key}"))
    else:
      out[f"{prefix}.{key}"] = value
  return out


def check_run_fingerprint(directory: str, config, *, allow_changes: bool = False) -> None:
  """Writes the fingerprint on a fresh run; on resume raises ValueError naming each changed field
  with both values, unless `allow_changes` (then the new fingerprint replaces the old one)."""
  path = os.path.join(directory, FINGERPRINT_FILE)
  current = json.loads(json.dumps(run_fingerprint(config)))  # tuples -> lists, as stored
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    changed = [(k, saved.get(k, "<absent>"), current.get(k, "<absent>"))
               for k in sorted(set(saved) | set(current)) if saved.get(k, "<absent>") != current.get(k, "<absent>")]
    if changed and not allow_changes:
      detail = "; ".join(f"{k}: checkpoint has {a!r}, this run has {b!r}" for k, a, b in changed)
      raise ValueError(f"resume: the checkpoints in {directory} were written with another config ({detail}). "
                       "Use another workdir, or pass --set train.allow_resume_changes=True to resume anyway")
    if not changed:
      return
  os.makedirs(directory, exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(current, f, indent=2, sort_keys=True)
  os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
