"""Exact resume after SIGTERM and SIGKILL, in subprocesses on 8 host devices.

A straight run to 16 steps and runs interrupted then resumed must log equal
per-step losses (`==`) and end with every state leaf equal: params,
optimizer state with the EMA target, DINO's center or MoCo's queue, PRNG
key, step, non-finite counter, and the data iterator position.

- DINO (EMA teacher and center; two global crops, no local ones: they add no checkpointed
  state and would double what each of the six processes traces): SIGTERM during a save, SIGTERM during a
  step, SIGKILL after a committed save, SIGTERM during kNN evaluation, then
  resume (four interruptions in one run; five processes against one).
  MoCo's queue goes through the same `method_state` checkpoint path; its
  exact resume is tested in process in tests/test_methods.py.

After SIGTERM the run must commit the step it was on and exit 143 within
the grace period.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sslax.train.checkpoint import verify_manifest
from sslax.train.metrics import read_metrics

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_runner.py")
STEPS = 16
GRACE_S = 60  # generous for a loaded 2-core CI machine; cloud preemption gives 30 s to minutes


def _start(method, workdir, *flags):
  return subprocess.Popen([sys.executable, RUNNER, method, str(workdir), str(STEPS), *flags],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=300):
  _, err = proc.communicate(timeout=timeout)
  return proc.returncode, err


def _logged(workdir):
  return max((r["step"] for r in read_metrics(str(workdir)) if "loss" in r), default=0)


def _committed(workdir):
  path = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(path):
    return []
  return sorted(int(d) for d in os.listdir(path) if d.isdigit() and verify_manifest(os.path.join(path, d)) is None)


def _wait_until(predicate, proc, timeout=240):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    if proc.poll() is not None:
      raise AssertionError(f"the run ended before the signal: {proc.communicate()[1][-2000:]}")
    time.sleep(0.05)
  proc.kill()
  raise AssertionError("timed out waiting for the run")


def _losses(workdir):
  return {r["step"]: r["loss"] for r in read_metrics(str(workdir)) if "loss" in r}


def _data_position(workdir):
  root = os.path.join(workdir, "checkpoints", str(STEPS), "data")
  out = {}
  for dirpath, _, files in os.walk(root):
    for name in files:
      if name == "commit_success.txt":  # names the folder, not the content
        continue
      with open(os.path.join(dirpath, name), "rb") as f:
        out[os.path.relpath(os.path.join(dirpath, name), root)] = f.read()
  return out


def _assert_same_run(straight, resumed):
  assert _losses(resumed) == _losses(straight) and len(_losses(straight)) == STEPS
  a, b = np.load(os.path.join(straight, "final_state.npz")), np.load(os.path.join(resumed, "final_state.npz"))
  assert sorted(a.files) == sorted(b.files)
  for key in a.files:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  assert _data_position(resumed) == _data_position(straight) != {}


def _straight(method, tmp_path_factory):
  workdir = tmp_path_factory.mktemp(f"straight_{method}")
  rc, err = _finish(_start(method, workdir))
  assert rc == 0, err[-3000:]
  return str(workdir)


def _sigterm(proc, workdir):
  """Sends SIGTERM; the run must commit the step it was on and exit 143 within the grace period."""
  sent = time.time()
  proc.send_signal(signal.SIGTERM)
  rc, err = _finish(proc, timeout=GRACE_S)
  assert rc == 143, err[-3000:]
  assert time.time() - sent < GRACE_S
  assert "stopped by a preemption notice" in err
  # the step it was on is committed (manifest verified), and nothing after it was logged
  assert _committed(workdir)[-1] == _logged(workdir)
  return _logged(workdir)


def _paused(workdir):
  return os.path.exists(os.path.join(workdir, "paused"))


def test_dino_resume_after_four_interruptions_is_exact(tmp_path_factory, tmp_path):
  straight = _straight("dino", tmp_path_factory)
  workdir = str(tmp_path)
  # 1. SIGTERM inside the periodic save of step 4 (checkpoint_every=4)
  proc = _start("dino", workdir, "--pause", "save@4")
  _wait_until(lambda: _paused(workdir), proc)
  assert _sigterm(proc, workdir) == 4
  os.remove(os.path.join(workdir, "paused"))
  # 2. SIGTERM during a step (not at a checkpoint): that step is saved at once
  proc = _start("dino", workdir, "--delay", "0.3")
  _wait_until(lambda: _logged(workdir) >= 5, proc)
  assert 5 <= _sigterm(proc, workdir) < 8
  # 3. SIGKILL after step 8 is committed (while later steps run)
  proc = _start("dino", workdir, "--delay", "0.3")
  _wait_until(lambda: 8 in _committed(workdir) and _logged(workdir) >= 10, proc)
  proc.kill()
  assert _finish(proc)[0] == -signal.SIGKILL
  # 4. SIGTERM during the kNN evaluation after step 12
  proc = _start("dino", workdir, "--pause", "eval@12")
  _wait_until(lambda: _paused(workdir), proc)
  assert _sigterm(proc, workdir) == 12
  rc, err = _finish(_start("dino", workdir))
  assert rc == 0, err[-3000:]
  _assert_same_run(straight, workdir)
