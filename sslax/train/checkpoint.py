"""Orbax checkpoints of the whole TrainState plus the grain iterator position, with integrity manifests."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from sslax.train.state import TrainState

log = logging.getLogger("sslax")


MANIFEST_FILE = "sslax_manifest.json"


class CheckpointCorruptError(RuntimeError):
  """A checkpoint failed its integrity check (or none is valid); the message names the path."""


def _sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


def write_manifest(step_dir: str) -> None:
  """Records every file of a committed step (size and SHA-256) in `<step_dir>/sslax_manifest.json`.

  Orbax makes a save atomic (temporary folder, then rename) but records no
  checksums; this manifest is sslax's commit marker and lets a restore find
  truncated, altered or missing files before any tensor is read.
  """
  files = {}
  for dirpath, _, names in os.walk(step_dir):
    for name in names:
      path = os.path.join(dirpath, name)
      rel = os.path.relpath(path, step_dir)
      if rel != MANIFEST_FILE:
        files[rel] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
  tmp = os.path.join(step_dir, MANIFEST_FILE + ".tmp")
  with open(tmp, "w") as f:
    json.dump({"files": files}, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, os.path.join(step_dir, MANIFEST_FILE))


def verify_manifest(step_dir: str) -> str | None:
  """None when every file of the step's manifest is there with its size and checksum; otherwise
  what is wrong, naming the path."""
  manifest = os.path.join(step_dir, MANIFEST_FILE)
  if not os.path.exists(manifest):
    return f"{manifest} is missing (the save of this step never finished)"
  try:
    with open(manifest) as f:
      files = json.load(f)["files"]
  except (ValueError, KeyError) as e:
    return f"{manifest} is unreadable ({e})"
  for rel, expected in sorted(files.items()):
    path = os.path.join(step_dir, rel)
    if not os.path.exists(path):
      return f"{path} is missing"
    size = os.path.getsize(path)
    if size != expected["size"]:
      return f"{path} has {size} bytes, expected {expected['size']} (truncated or overwritten)"
    if _sha256(path) != expected["sha256"]:
      return f"{path} does not match its SHA-256 checksum (the file was altered)"
  return None


def _state_handler() -> ocp.PyTreeCheckpointHandler:
  """The handler of the `state` item: Orbax's standard one, except on the CPU backend, where
  jax.Arrays are written without replica-parallel slicing.

  Orbax splits each replicated array into one slice per replica so that every
  replica writes a part (it turns this off itself only when JAX_PLATFORMS
  names a GPU). On CPU devices, all in one host's memory, that buys nothing
  and costs one eager `slice` dispatch per replica per leaf: ~8,000 dispatches
  and ~150 small compiles per save of a DINO state on 8 host devices, ~2 s a
  save. Here replica 0 of each shard writes it, as on GPUs. The files are read
  the same way either way, so checkpoints written with and without it restore
  into each other.
  """
  if jax.devices()[0].platform != "cpu":
    return ocp.PyTreeCheckpointHandler()
  try:  # the array-metadata store records typed PRNG keys; Orbax only exposes it from _src
    from orbax.checkpoint._src.metadata.array_metadata_store import Store
  except ImportError:  # pragma: no cover - a newer Orbax moved it: keep its defaults
    return ocp.PyTreeCheckpointHandler()
  registry = ocp.type_handlers.create_type_handler_registry(
      *[(ty, ocp.type_handlers.get_type_handler(ty)) for ty in ocp.type_handlers.supported_types()
        if ty is not jax.Array],
      (jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False, array_metadata_store=Store())))
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


class Checkpointer:
  """An `ocp.CheckpointManager` under `<workdir>/checkpoints` with two items:
  `state` (the TrainState pytree, sharded as it is) and `data` (the grain
  iterator state, one JSON per process).

  A step is committed in two phases: Orbax writes it to a temporary folder
  and renames it (atomic), then sslax writes its manifest of sizes and
  checksums. Only steps with a valid manifest are restored; `on_corrupt`
  says whether an invalid latest step falls back to the previous valid one
  (with a warning; the bad folder is moved to `checkpoints_corrupt/`) or
  fails. Temporary folders of interrupted saves are removed on start.
  """

  def __init__(self, workdir: str, *, save_every: int, max_to_keep: int = 3, async_save: bool = True,
               on_corrupt: str = "fallback"):
    if on_corrupt not in ("fallback", "fail"):
      raise ValueError(f"train.on_corrupt_checkpoint: expected 'fallback' or 'fail', got {on_corrupt!r}")
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    self.on_corrupt = on_corrupt
    self.async_save = async_save
    options = ocp.CheckpointManagerOptions(save_interval_steps=max(1, save_every),
                                           # +1: the step being committed (Orbax done, manifest not
                                           # yet) must not push out the previous committed step.
                                           max_to_keep=max_to_keep + 1, create=True,
                                           enable_async_checkpointing=async_save,
                                           cleanup_tmp_directories=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers={
        "state": _state_handler(), "data": grain.checkpoint.CheckpointHandler()})
    self._last_saved = None
    self._manifest_thread: threading.Thread | None = None
    self._manifest_error: BaseException | None = None

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def latest_step(self) -> int | None:
    """The latest step Orbax committed (its manifest is checked only by `restore`)."""
    return self.manager.latest_step()

  def should_save(self, step: int) -> bool:
    return self.manager.should_save(step)

  def save(self, state: TrainState, data_iterator: Any, *, force: bool = False) -> bool:
    step = int(jax.device_get(state.step))
    if not force and not self.manager.should_save(step):
      return False
    if step == self._last_saved or step in self.manager.all_steps():
      return False  # already saved or in flight (e.g. the final forced save right after a periodic one)
    self._join_manifest()
    self._last_saved = step
    saved = self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)),
        force=force)
    if saved:
      if self.async_save:  # the manifest follows the background commit without blocking training
        self._manifest_thread = threading.Thread(target=self._commit_manifest, args=(step,), daemon=True,
                                                 name=f"sslax-manifest-{step}")
        self._manifest_thread.start()
      else:
        self._commit_manifest(step)
    return saved

  def _commit_manifest(self, step: int) -> None:
    try:
      self.manager.wait_until_finished()
      if jax.process_index() == 0:
        write_manifest(self._step_dir(step))
    except BaseException as e:  # surfaced by the next save / wait
      self._manifest_error = e

  def _join_manifest(self) -> None:
    if self._manifest_thread is not None:
      self._manifest_thread.join()
      self._manifest_thread = None
    if self._manifest_error is not None:
      error, self._manifest_error = self._manifest_error, None
      raise RuntimeError(f"checkpoint: writing the manifest failed: {error}") from error

  def restore(self, abstract_state: TrainState, data_iterator: Any, step: int | None = None):
    """Restores into the shapes, dtypes and shardings of `abstract_state`; returns (state, iterator).

    Checks the step's manifest first (the latest valid step when `step` is
    None, falling back past invalid ones as `on_corrupt` says).
    """
    self.wait()
    candidates = sorted(self.manager.all_steps(), reverse=True) if step is None else [step]
    problems = []
    for candidate in candidates:
      problem = verify_manifest(self._step_dir(candidate))
      if problem is None:
        if problems:
          self.manager.reload()
        return self._restore(candidate, abstract_state, data_iterator)
      problems.append(f"step {candidate}: {problem}")
      if self.on_corrupt == "fail" or step is not None:
        raise CheckpointCorruptError(f"checkpoint step {candidate} is invalid: {problem} "
                                     "(set train.on_corrupt_checkpoint='fallback' to restore the previous step)")
      moved = self._quarantine(candidate)
      message = f"checkpoint step {candidate} is invalid: {problem}; moved it to {moved} and trying the previous step"
      log.warning(message)
      warnings.warn(message, RuntimeWarning)
    raise CheckpointCorruptError(f"no valid checkpoint under {self.directory}: " + "; ".join(problems))

  def _quarantine(self, step: int) -> str:
    target = os.path.join(self.workdir, "checkpoints_corrupt", f"{step}")
    if jax.process_count() > 1:  # every process has checked the step before process 0 moves it
      multihost_utils.sync_global_devices(f"sslax-quarantine-{step}")
    if jax.process_index() == 0:
      if os.path.exists(target):
        target = f"{target}-{int(time.time())}"
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(self._step_dir(step), target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"sslax-quarantined-{step}")
    return target

  def _restore(self, step, abstract_state, data_iterator):
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    state_args = ocp.args.PyTreeRestore(target, restore_args=ocp.checkpoint_utils.construct_restore_args(target))
    positions = self._data_positions(step)
    if positions is None:  # written by as many processes as read it: grain restores its own file
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=state_args, data=grain.checkpoint.CheckpointRestore(data_iterator)))
      return restored["state"], restored["data"]
    restored = self.manager.restore(step, args=ocp.args.Composite(state=state_args))
    data_iterator.set_state(positions)
    return restored["state"], data_iterator

  def _data_positions(self, step: int):
    """None when this process's grain file is in the step; otherwise (the run had another number
    of processes) the iterator state to continue from. Every process reads its own rows of the
    same global batches (`sslax.data.pipeline.train_dataset`), so all saved states are the same
    count of batches, and that count is the position under any number of processes."""
    data_dir = os.path.join(self._step_dir(step), "data")
    own = os.path.join(data_dir, f"process_{jax.process_index()}-of-{jax.process_count()}.json")
    if os.path.exists(own) or not os.path.isdir(data_dir):
      return None
    states = []
    for name in sorted(os.listdir(data_dir)):
      if name.startswith("process_") and name.endswith(".json"):
        with open(os.path.join(data_dir, name)) as f:
          states.append(json.load(f))
    if not states or any(s != states[0] for s in states):
      raise CheckpointCorruptError(f"{data_dir}: expected the data positions of the processes that wrote step "
                                   f"{step} to agree, got {states}")
    log.info("step %d was written by %d processes; this run has %d: the data position (%s) carries over",
             step, len(states), jax.process_count(), states[0])
    return states[0]

  def wait(self) -> None:
    """Blocks until the last save is committed, manifest included."""
    self.manager.wait_until_finished()
    self._join_manifest()

  def close(self) -> None:
    self.wait()
    self.manager.close()


FINGERPRINT_FILE = "run_fingerprint.json"


def run_fingerprint(config) -> dict[str, Any]:
  """The config values a checkpoint's data position and randomness depend on, flattened.

  Resuming with another seed, global batch size, dataset or augmentation
  would silently change which examples come next and how they are augmented.
  """
  flat = {"seed": config.seed, "train.batch_size": config.train.batch_size}
  for section in ("data", "augment", "augment_view2", "audio"):
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
  with both values, unless `allow_changes` (then the new fingerprint replaces the old one).
  Every process checks; only process 0 writes."""
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
  if jax.process_index() != 0:
    return  # every process checks; one writes (processes share the directory, and racing renames fail)
  os.makedirs(directory, exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(current, f, indent=2, sort_keys=True)
  os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
