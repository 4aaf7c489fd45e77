"""Exact resume after SIGTERM and SIGKILL, in subprocesses on 8 host devices.

A straight run to 16 steps and runs interrupted (SIGTERM; SIGKILL after a
committed save; both in turn) then resumed must log equal per-step losses
(`==`) and end with every state leaf equal: params, optimizer state with the
EMA target, DINO's center or MoCo's queue, PRNG key, step, and the data
iterator position.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sslax.train.metrics import read_metrics

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_runner.py")
STEPS = 16


def _start(method, workdir, delay=0.0):
  return subprocess.Popen([sys.executable, RUNNER, method, str(workdir), str(STEPS), str(delay)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=300):
  out, err = proc.communicate(timeout=timeout)
  return proc.returncode, err


def _logged(workdir):
  return max((r["step"] for r in read_metrics(str(workdir))), default=0)


def _committed(workdir):
  path = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(path) if d.isdigit()) if os.path.isdir(path) else []


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


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
  runs = {}
  for method in ("dino", "moco"):
    workdir = tmp_path_factory.mktemp(f"straight_{method}")
    rc, err = _finish(_start(method, workdir))
    assert rc == 0, err[-3000:]
    runs[method] = str(workdir)
  return runs


def _sigterm(method, workdir, after_step):
  proc = _start(method, workdir, delay=0.25)
  _wait_until(lambda: _logged(workdir) >= after_step, proc)
  proc.send_signal(signal.SIGTERM)
  rc, err = _finish(proc)
  assert rc == 143, err[-3000:]
  # the step it was on is committed, and nothing after it was logged
  assert _committed(workdir)[-1] == _logged(workdir) >= after_step


def _sigkill_after_commit(method, workdir, after_step):
  proc = _start(method, workdir, delay=0.25)
  _wait_until(lambda: any(s >= after_step for s in _committed(workdir)) and _logged(workdir) > after_step + 1, proc)
  proc.kill()
  assert _finish(proc)[0] == -signal.SIGKILL


def _resume(method, workdir):
  rc, err = _finish(_start(method, workdir))
  assert rc == 0, err[-3000:]


@pytest.mark.parametrize("method", ["dino", "moco"])
def test_resume_after_sigterm_is_exact(method, straight_runs, tmp_path):
  _sigterm(method, str(tmp_path), after_step=6)
  _resume(method, str(tmp_path))
  _assert_same_run(straight_runs[method], str(tmp_path))


def test_resume_after_sigkill_following_a_committed_save_is_exact(straight_runs, tmp_path):
  _sigkill_after_commit("dino", str(tmp_path), after_step=4)
  _resume("dino", str(tmp_path))
  _assert_same_run(straight_runs["dino"], str(tmp_path))


def test_resume_after_two_interruptions_is_exact(straight_runs, tmp_path):
  _sigterm("dino", str(tmp_path), after_step=3)
  _sigkill_after_commit("dino", str(tmp_path), after_step=8)
  _resume("dino", str(tmp_path))
  _assert_same_run(straight_runs["dino"], str(tmp_path))
