"""Orbax checkpoints of the whole TrainState plus the grain iterator position, with integrity manifests."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from sslax.paths import exists, is_remote, join, makedirs, read_text, resolve, write_text
from sslax.train.state import TrainState

log = logging.getLogger("sslax")


MANIFEST_FILE = "sslax_manifest.json"
# Orbax's own markers, (re)written as it commits the folder, after the manifest: not listed in it
_ORBAX_MARKERS = (ocp.path.atomicity_types.COMMIT_SUCCESS_FILE, "_CHECKPOINT_METADATA")


class CheckpointCorruptError(RuntimeError):
  """A checkpoint failed its integrity check (or none is valid); the message names the path."""


class DiskFullError(RuntimeError):
  """The disk cannot hold another checkpoint; the message names the path and the step kept."""


def disk_full_message(path: str, committed: int | None, detail: str) -> str:
  kept = (f"the last committed step, {committed}, is intact" if committed is not None
          else "no step was committed yet")
  return f"the disk holding {path} is full ({detail}); {kept}: free space there and run the same command again"


def _sha256(path: epath.Path) -> str:
  with path.open("rb") as f:
    return hashlib.file_digest(f, "sha256").hexdigest()


HASH_POLICIES = ("auto", "sha256", "size")


def hashes_for(directory: str, policy: str = "auto") -> bool:
  """Whether manifests under `directory` record SHA-256 checksums (`train.checkpoint_hashes`):
  'sha256' always, 'size' never, 'auto' on local disks only."""
  if policy not in HASH_POLICIES:
    raise ValueError(f"train.checkpoint_hashes: expected one of {list(HASH_POLICIES)}, got {policy!r}")
  return policy == "sha256" or (policy == "auto" and not is_remote(directory))


def write_manifest(step_dir, *, hashes: bool = True) -> None:
  """Records every file of a committed step (size, and SHA-256 when `hashes`) in
  `<step_dir>/sslax_manifest.json`.

  Orbax makes a save atomic (temporary folder, then rename) but records no
  checksums of the data (TensorStore's zarr3 checksums only its shard indices);
  this manifest lets a restore find truncated, altered or missing files before
  any tensor is read. `Checkpointer` writes it into the temporary folder just
  before Orbax renames it (`_ManifestThenRename`), so a committed step always
  has one. Sizes come from a listing (no file is read); the checksums read each
  file back once, in Orbax's background commit thread on the primary process.
  On object stores that is every host's shards over the network per save, so
  there 'auto' (`train.checkpoint_hashes`) records sizes only.
  """
  step_dir = epath.Path(step_dir)
  files = {}
  for folder, _, names in step_dir.walk():  # one listing per folder (epath refuses `**` globs on GCS)
    for name in names:
      path = folder / name
      rel = os.fspath(path.relative_to(step_dir))
      if rel == MANIFEST_FILE or rel in _ORBAX_MARKERS:
        continue
      files[rel] = {"size": path.stat().length}
      if hashes:
        files[rel]["sha256"] = _sha256(path)
  write_text(step_dir / MANIFEST_FILE, json.dumps({"files": files}, indent=1, sort_keys=True))


def verify_manifest(step_dir) -> str | None:
  """None when every file of the step's manifest is there with its size and checksum (when it
  has one); otherwise what is wrong, naming the path."""
  step_dir = epath.Path(step_dir)
  manifest = step_dir / MANIFEST_FILE
  if not manifest.exists():
    return f"{manifest} is missing (removed, or the step was written by another program than sslax)"
  try:
    files = json.loads(manifest.read_text())["files"]
  except (ValueError, KeyError) as e:
    return f"{manifest} is unreadable ({e})"
  for rel, expected in sorted(files.items()):
    path = step_dir / rel
    if not path.exists():
      return f"{path} is missing"
    size = path.stat().length
    if size != expected["size"]:
      return f"{path} has {size} bytes, expected {expected['size']} (truncated or overwritten)"
    if "sha256" in expected and _sha256(path) != expected["sha256"]:
      return f"{path} does not match its SHA-256 checksum (the file was altered)"
  return None


class _ManifestThenRename(ocp.path.atomicity.AtomicRenameTemporaryPath):
  """Orbax's atomic-rename commit with the sslax manifest written into the temporary folder first:
  the rename makes the step and its manifest visible together, so no kill, however timed, leaves a
  committed step without a manifest. Orbax calls `finalize` once, on the primary process, after
  every process's writes of the step have finished."""

  hashes = True  # set per Checkpointer (`_manifest_class`)

  async def finalize(self):
    await asyncio.to_thread(write_manifest, self.get(), hashes=self.hashes)
    await super().finalize()


def _manifest_class(hashes: bool):
  return type("_ManifestThenRename", (_ManifestThenRename,), {"hashes": hashes})


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

  Orbax writes a step to a temporary folder, sslax adds its manifest of sizes
  and checksums there, and Orbax renames the folder (atomic). Only steps with
  a valid manifest are restored; `on_corrupt` says whether an invalid latest
  step falls back to the previous valid one (with a warning; the bad folder
  is moved to `checkpoints_corrupt/`; when none is left, training starts
  from step 0) or fails. Temporary folders of interrupted saves are removed
  on start.
  """

  def __init__(self, workdir: str, *, save_every: int, max_to_keep: int = 3, async_save: bool = True,
               on_corrupt: str = "fallback", hashes: str = "auto"):
    if on_corrupt not in ("fallback", "fail"):
      raise ValueError(f"train.on_corrupt_checkpoint: expected 'fallback' or 'fail', got {on_corrupt!r}")
    self.workdir = resolve(workdir)  # a local folder or a gs:// URL (sslax.paths)
    self.directory = join(self.workdir, "checkpoints")
    self.hashes = hashes_for(self.directory, hashes)
    self.on_corrupt = on_corrupt
    self.async_save = async_save
    options = ocp.CheckpointManagerOptions(save_interval_steps=max(1, save_every), max_to_keep=max_to_keep,
                                           create=True, enable_async_checkpointing=async_save,
                                           cleanup_tmp_directories=True,
                                           temporary_path_class=_manifest_class(self.hashes))
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers={
        "state": _state_handler(), "data": grain.checkpoint.CheckpointHandler()})
    self._last_saved = None

  def _check_space(self, state, step: int) -> None:
    """DiskFullError before Orbax writes anything when the disk has less room than the state's
    bytes (+10% and 1 MiB for metadata): a save that runs out of space midway fails in background
    threads with pages of tracebacks, while the previous step stays intact either way."""
    if is_remote(self.directory):  # object stores have no free-space query (nor a full disk)
      return
    need = int(sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state)) * 1.1) + (1 << 20)
    free = shutil.disk_usage(self.directory).free
    if free < need:
      raise DiskFullError(disk_full_message(self.directory, self.manager.latest_step(),
                                            f"{free / 2**20:.1f} MiB free, a checkpoint of step {step} needs "
                                            f"about {need / 2**20:.1f} MiB"))

  def _step_dir(self, step: int) -> epath.Path:
    return epath.Path(self.directory) / str(step)

  def latest_step(self) -> int | None:
    """The latest step Orbax committed (its manifest is checked only by `restore`)."""
    return self.manager.latest_step()

  def should_save(self, step: int) -> bool:
    return self.manager.should_save(step)

  def reached_preemption(self, step: int) -> bool:
    """True on every process at the same step once any of them had a preemption notice (Orbax over
    JAX's preemption sync point; always False in a single process, where `PreemptionNotice`
    handles SIGTERM itself). Every process must call it at every step."""
    return self.manager.reached_preemption(step)

  def save(self, state: TrainState, data_iterator: Any, *, step: int | None = None, force: bool = False) -> bool:
    """Saves `state` as `step` (the loop knows it: passing it spares a device-to-host read of
    `state.step`, a sync every step) when `save_every` says so or `force`."""
    step = int(jax.device_get(state.step)) if step is None else int(step)
    if not force and not self.manager.should_save(step):
      return False
    if step == self._last_saved or step in self.manager.all_steps():
      return False  # already saved or in flight (e.g. the final forced save right after a periodic one)
    self._check_space(state, step)
    self._last_saved = step
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)),
        force=force)

  def restore(self, abstract_state: TrainState, data_iterator: Any, step: int | None = None):
    """Restores into the shapes, dtypes and shardings of `abstract_state`; returns (state, iterator),
    or None when `on_corrupt='fallback'` set every step aside (the caller starts from step 0).

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
    if not candidates:
      raise CheckpointCorruptError(f"no checkpoint under {self.directory}")
    message = (f"no valid checkpoint is left under {self.directory} (set aside in "
               f"{join(self.workdir, 'checkpoints_corrupt')}): starting from step 0")
    log.warning(message)
    warnings.warn(message, RuntimeWarning)
    self.manager.reload()
    return None

  def _quarantine(self, step: int) -> str:
    target = epath.Path(join(self.workdir, "checkpoints_corrupt", f"{step}"))
    if jax.process_count() > 1:  # every process has checked the step before process 0 moves it
      multihost_utils.sync_global_devices(f"sslax-quarantine-{step}")
    if jax.process_index() == 0:
      if target.exists():
        target = target.with_name(f"{target.name}-{int(time.time())}")
      target.parent.mkdir(parents=True, exist_ok=True)
      self._step_dir(step).rename(target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"sslax-quarantined-{step}")
    return os.fspath(target)

  def _restore(self, step, abstract_state, data_iterator):
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    self._check_structure(step, target)
    state_args = ocp.args.PyTreeRestore(target, restore_args=ocp.checkpoint_utils.construct_restore_args(target))
    positions = self._data_positions(step)
    if positions is None:  # written by as many processes as read it: grain restores its own file
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=state_args, data=grain.checkpoint.CheckpointRestore(data_iterator)))
      return restored["state"], restored["data"]
    restored = self.manager.restore(step, args=ocp.args.Composite(state=state_args))
    data_iterator.set_state(positions)
    return restored["state"], data_iterator

  def _check_structure(self, step: int, target) -> None:
    """ValueError naming the leaves (path, shape, dtype) in which the checkpoint's state differs
    from `target`'s, before Orbax reads any of it (its own error is a tree dump of kilobytes)."""
    saved = _leaf_specs(self.manager.item_metadata(step)["state"].tree)
    wanted = _leaf_specs(target)
    if saved == wanted:
      return
    order = lambda k: (not k.startswith("params"), k)  # noqa: E731 - the network's leaves first
    diffs = [f"{k}: checkpoint has {saved[k][0]} {saved[k][1]}, this run has {wanted[k][0]} {wanted[k][1]}"
             for k in sorted(set(saved) & set(wanted), key=order) if saved[k] != wanted[k]]
    diffs += [f"{k}: only in the checkpoint" for k in sorted(set(saved) - set(wanted), key=order)]
    diffs += [f"{k}: only in this run's state" for k in sorted(set(wanted) - set(saved), key=order)]
    raise ValueError(f"checkpoint step {step} in {self.directory} holds another state than this config builds "
                     f"({len(diffs)} difference(s), e.g. {'; '.join(diffs[:4])}): it was written by another method, "
                     f"model or optimizer (see {join(self.directory, FINGERPRINT_FILE)}). Use the config "
                     "it was trained with, or another workdir")

  def _data_positions(self, step: int):
    """None when this process's grain file is in the step; otherwise (the run had another number
    of processes) the iterator state to continue from. Every process reads its own rows of the
    same global batches (`sslax.data.pipeline.train_dataset`), so all saved states are the same
    count of batches, and that count is the position under any number of processes."""
    data_dir = self._step_dir(step) / "data"
    own = data_dir / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    if own.exists() or not data_dir.is_dir():
      return None
    states = []
    for path in sorted(data_dir.iterdir()):
      if path.name.startswith("process_") and path.name.endswith(".json"):
        states.append(json.loads(path.read_text()))
    if not states or any(s != states[0] for s in states):
      raise CheckpointCorruptError(f"{data_dir}: expected the data positions of the processes that wrote step "
                                   f"{step} to agree, got {states}")
    log.info("step %d was written by %d processes; this run has %d: the data position (%s) carries over",
             step, len(states), jax.process_count(), states[0])
    return states[0]

  def wait(self) -> None:
    """Blocks until the last save is committed, manifest included."""
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.wait()
    self.manager.close()


def _leaf_specs(tree) -> dict[str, tuple]:
  """'params/w' -> (shape, dtype) of every array leaf; dtypes of PRNG keys are not compared (Orbax
  records their data, not their key type)."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    if not hasattr(leaf, "shape"):
      continue
    name = "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
    dtype = str(leaf.dtype)
    out[name] = (tuple(leaf.shape), "" if dtype.startswith("key") else dtype)
  return out


FINGERPRINT_FILE = "run_fingerprint.json"
# what the state's structure (and the method's meaning of it) depends on; `sslax eval` checks these
STRUCTURE_SECTIONS = ("method", "model", "projector")
# what the data position and randomness of a resumed run depend on
DATA_SECTIONS = ("data", "augment", "augment_view2", "audio")


def run_fingerprint(config, sections=STRUCTURE_SECTIONS + DATA_SECTIONS) -> dict[str, Any]:
  """The config values a checkpoint depends on, flattened: the method, the model and the
  optimizer (the state's structure: resuming a SimCLR state as BYOL, or a ResNet-18 as a
  ResNet-50, cannot work), and the seed, global batch size, dataset and augmentation (which
  examples come next and how they are augmented)."""
  flat = {}
  if any(s in STRUCTURE_SECTIONS for s in sections):
    flat["optim.name"] = config.optim.name
  if any(s in DATA_SECTIONS for s in sections):
    flat.update({"seed": config.seed, "train.batch_size": config.train.batch_size})
  for section in sections:
    node = config.get(section)
    if node is None:
      continue
    for key, value in _flatten(node.to_dict(), section).items():
      flat[key] = list(value) if isinstance(value, tuple) else value
  return json.loads(json.dumps(flat, default=str))  # tuples -> lists, as stored


def _flatten(d, prefix):
  out = {}
  for key, value in d.items():
    if isinstance(value, dict):
      out.update(_flatten(value, f"{prefix}.{key}"))
    else:
      out[f"{prefix}.{key}"] = value
  return out


def fingerprint_changes(directory: str, config, sections=STRUCTURE_SECTIONS + DATA_SECTIONS) -> list[str] | None:
  """None when `directory` has no fingerprint; otherwise each field of `sections` whose value
  differs from the fingerprint's, with both values. A field the fingerprint lacks (written by an
  older sslax) is not compared."""
  path = join(directory, FINGERPRINT_FILE)
  if not exists(path):
    return None
  saved = json.loads(read_text(path))
  current = run_fingerprint(config, sections)
  return [f"{k}: checkpoint has {saved[k]!r}, this run has {current.get(k, '<absent>')!r}"
          for k in sorted(saved) if (k in current or k.split(".")[0] in sections)
          and saved[k] != current.get(k, "<absent>")]


def check_run_fingerprint(directory: str, config, *, allow_changes: bool = False) -> None:
  """On resume, raises ValueError naming each changed field with both values, unless
  `allow_changes`. Every process checks; `save_run_fingerprint` records the config once the run
  has its state."""
  changed = fingerprint_changes(directory, config)
  if changed and not allow_changes:
    raise ValueError(f"resume: the checkpoints in {directory} were written with another config "
                     f"({'; '.join(changed)}). Use another workdir, or pass --set train.allow_resume_changes=True "
                     "to resume anyway")


def save_run_fingerprint(directory: str, config) -> None:
  """Writes the fingerprint of `config` (replacing an older one) from process 0 only: the processes
  share the directory, and racing renames fail."""
  if jax.process_index() != 0 or fingerprint_changes(directory, config) == []:
    return
  makedirs(directory)
  # atomic: a crash leaves the old file or the new one
  write_text(join(directory, FINGERPRINT_FILE), json.dumps(run_fingerprint(config), indent=2, sort_keys=True))
