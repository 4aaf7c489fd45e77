"""Checkpoint integrity: manifests, corruption detected and fallen back from, kill -9 during saves.

The kill test SIGKILLs a process that saves back to back (so every moment
is inside some save) at random moments, with synchronous and asynchronous
saves. CI runs SSLAX_KILL_REPEATS (default 3) kills per mode; the full 20
per mode is recorded in experiments/RESULTS.md.
"""
import os
import random
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from sslax.train.checkpoint import MANIFEST_FILE, CheckpointCorruptError, Checkpointer, verify_manifest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_kill_runner import Tiny, data_iterator, state_at  # noqa: E402

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint_kill_runner.py")
KILL_REPEATS = int(os.environ.get("SSLAX_KILL_REPEATS", "3"))


def _save_steps(workdir, steps, **kw):
  ckpt = Checkpointer(str(workdir), save_every=1, max_to_keep=5, **kw)
  it = data_iterator()
  for _ in range(steps[0] - 1):
    next(it)
  for step in steps:
    next(it)
    ckpt.save(state_at(step), it, force=True)
  ckpt.close()


def _restore(workdir, **kw):
  ckpt = Checkpointer(str(workdir), save_every=1, **kw)
  try:
    state, it = ckpt.restore(state_at(0), data_iterator())
  finally:
    ckpt.close()
  step = int(state.step)
  for leaf in state.params.values():
    assert np.all(np.asarray(leaf) == step), "restored bytes are not the step's"
  assert next(it) == step  # the iterator had yielded 0 .. step-1
  return step


def _largest_file(step_dir):
  files = [os.path.join(d, f) for d, _, names in os.walk(step_dir) for f in names if f != MANIFEST_FILE]
  return max(files, key=os.path.getsize)


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _flip_byte(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0xFF]))


CORRUPTIONS = {
    "truncated file": lambda d: _truncate(_largest_file(d)),
    "flipped byte": lambda d: _flip_byte(_largest_file(d)),
    "deleted file": lambda d: os.remove(_largest_file(d)),
    "missing commit marker": lambda d: os.remove(os.path.join(d, MANIFEST_FILE)),
}


@pytest.mark.parametrize("async_save", [True, False], ids=["async", "sync"])
def test_saves_write_a_manifest_that_verifies(tmp_path, async_save):
  _save_steps(tmp_path, [1, 2], async_save=async_save)
  for step in (1, 2):
    assert verify_manifest(str(tmp_path / "checkpoints" / str(step))) is None
  assert _restore(tmp_path) == 2


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corruption_is_detected_and_the_previous_step_restored(tmp_path, kind):
  _save_steps(tmp_path, [1, 2], async_save=False)
  step_dir = str(tmp_path / "checkpoints" / "2")
  CORRUPTIONS[kind](step_dir)
  problem = verify_manifest(step_dir)
  assert problem is not None and str(tmp_path) in problem
  with pytest.warns(RuntimeWarning, match="checkpoint step 2 is invalid: .*" + str(tmp_path)):
    assert _restore(tmp_path) == 1
  assert not os.path.exists(step_dir) and os.listdir(tmp_path / "checkpoints_corrupt")
  # training goes on from step 1 and can save step 2 again
  _save_steps(tmp_path, [2])
  assert _restore(tmp_path) == 2


def test_corruption_fails_when_configured(tmp_path):
  _save_steps(tmp_path, [1, 2], async_save=False)
  _flip_byte(_largest_file(str(tmp_path / "checkpoints" / "2")))
  with pytest.raises(CheckpointCorruptError, match=r"step 2 is invalid: .*checkpoints/2/.*SHA-256"):
    _restore(tmp_path, on_corrupt="fail")
  assert os.path.exists(tmp_path / "checkpoints" / "2")  # nothing moved or deleted


def test_every_step_set_aside_means_a_fresh_start_said_so(tmp_path):
  """Issue 36 case 2: the only step lost its manifest; under 'fallback' it is set aside (kept, not
  deleted) and restore says training starts from step 0, instead of failing until a second restart."""
  _save_steps(tmp_path, [1], async_save=False)
  os.remove(tmp_path / "checkpoints" / "1" / MANIFEST_FILE)
  ckpt = Checkpointer(str(tmp_path), save_every=1)
  with pytest.warns(RuntimeWarning, match="no valid checkpoint is left .* starting from step 0"):
    assert ckpt.restore(state_at(0), data_iterator()) is None
  assert ckpt.latest_step() is None
  ckpt.close()
  assert os.path.isdir(tmp_path / "checkpoints_corrupt" / "1")
  with pytest.raises(CheckpointCorruptError, match="step 1 is invalid"):  # 'fail' still fails, moving nothing
    _save_steps(tmp_path / "b", [1], async_save=False)
    os.remove(tmp_path / "b" / "checkpoints" / "1" / MANIFEST_FILE)
    _restore(tmp_path / "b", on_corrupt="fail")


def test_a_committed_step_has_its_manifest_before_it_is_visible(tmp_path, monkeypatch):
  """The manifest is written into Orbax's temporary folder before the rename that commits it: at
  the moment the step folder appears, its manifest is already there (no window for a kill)."""
  seen = []
  real_rename = os.rename

  def rename(src, dst, *a, **k):
    if os.path.basename(str(dst)).isdigit():
      seen.append(os.path.exists(os.path.join(src, MANIFEST_FILE)))
    return real_rename(src, dst, *a, **k)

  monkeypatch.setattr(os, "rename", rename)
  _save_steps(tmp_path, [1, 2], async_save=True)
  assert seen == [True, True]
  assert all(verify_manifest(str(tmp_path / "checkpoints" / s)) is None for s in ("1", "2"))


def _kill_once(workdir, async_save, rng):
  proc = subprocess.Popen([sys.executable, RUNNER, str(workdir), "1" if async_save else "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
  # the kill falls after the first commit (on a loaded machine the first save can take longer than
  # the random delay, and before it there is nothing to recover)
  first, committed_step = "", 0
  while committed_step < 1:  # async saves report "committed 0" after the first save
    line = proc.stdout.readline()
    assert line.startswith("committed"), line + proc.stderr.read()[-3000:]
    first, committed_step = first + line, int(line.split()[1])
  time.sleep(rng.uniform(0.05, 1.5))
  proc.kill()
  out, _ = proc.communicate()
  committed = [int(line.split()[1]) for line in (first + out).splitlines() if line.startswith("committed")]
  return max(committed, default=0)


@pytest.mark.parametrize("async_save", [True, False], ids=["async", "sync"])
def test_kill_9_during_saves_never_loses_a_committed_step(tmp_path, async_save):
  rng = random.Random(0)
  mid_write = recovered = 0
  for i in range(KILL_REPEATS):
    workdir = tmp_path / f"kill{i}"
    last_reported = _kill_once(workdir, async_save, rng)
    directory = workdir / "checkpoints"
    mid_write += any("tmp" in d for d in os.listdir(directory))
    valid = sorted(int(d) for d in os.listdir(directory) if d.isdigit()
                   and verify_manifest(str(directory / d)) is None)
    assert valid and valid[-1] >= last_reported
    if last_reported >= 2:  # the previous committed step survives too (max_to_keep=2)
      assert valid[-2] == valid[-1] - 1
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      assert _restore(workdir) == valid[-1]
    # the manifest is committed with the step (written before Orbax's rename): no step is set aside
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert not [d for d in os.listdir(directory) if "tmp" in d], "temporary folders left behind"
    recovered += 1
  print(f"kill -9 ({'async' if async_save else 'sync'} saves): {recovered} of {KILL_REPEATS} recovered "
        f"the latest committed step; {mid_write} kills left a temporary folder")


def test_orbax_standard_checkpoints_and_ours_restore_alike_on_8_devices(tmp_path, devices):
  """A step written by Orbax's StandardCheckpointHandler (replica-parallel slices of replicated
  arrays: how sslax wrote them before it turned that off on CPU) and one written by Checkpointer
  both restore through Checkpointer into the same sharded arrays, bit for bit."""
  import grain
  import jax
  import orbax.checkpoint as ocp
  from jax.sharding import Mesh, NamedSharding, PartitionSpec

  from sslax.train.checkpoint import write_manifest

  mesh = Mesh(np.array(devices), ("data",))
  replicated, split = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))
  rng = np.random.default_rng(0)
  state = Tiny(step=jax.device_put(np.int32(1), replicated), params={
      "w": jax.device_put(rng.normal(size=(64, 48)).astype(np.float32), replicated),
      "b": jax.device_put(rng.normal(size=(48,)).astype(np.float32), replicated),
      "rows": jax.device_put(rng.normal(size=(16, 8)).astype(np.float32), split),
      "key": jax.device_put(jax.random.PRNGKey(3), replicated)})
  it = data_iterator()
  next(it)
  orbax_dir, ours_dir = str(tmp_path / "orbax_standard"), str(tmp_path / "ours")
  manager = ocp.CheckpointManager(os.path.join(orbax_dir, "checkpoints"), item_names=("state", "data"),
                                  options=ocp.CheckpointManagerOptions(create=True))
  manager.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          data=grain.checkpoint.CheckpointSave(it)))
  manager.wait_until_finished()
  manager.close()
  write_manifest(os.path.join(orbax_dir, "checkpoints", "1"))
  ckpt = Checkpointer(ours_dir, save_every=1, async_save=False)
  ckpt.save(state, it, force=True)
  ckpt.close()
  zeros = jax.tree.map(lambda x: jax.device_put(np.zeros(x.shape, x.dtype), x.sharding), state)
  for workdir in (orbax_dir, ours_dir):
    ckpt = Checkpointer(workdir, save_every=1)
    restored, restored_it = ckpt.restore(zeros, data_iterator())
    ckpt.close()
    assert next(restored_it) == 1, workdir
    for (path, leaf), got in zip(jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(restored)):
      assert got.sharding == leaf.sharding, (workdir, path)
      np.testing.assert_array_equal(np.asarray(got), np.asarray(leaf), err_msg=f"{workdir} {path}")
