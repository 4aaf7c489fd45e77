"""Two processes of 4 CPU devices each on loopback (jax.distributed, Gloo) train as one 8-device run.

The 2-process run goes through the CLI as a user would launch it on two
hosts, with FSDP (parameters and optimizer state split over all 8 devices)
and a SIGTERM that reaches only one process; its per-step losses must equal
those of one data-parallel process with 8 devices, and the checkpoint both
processes saved at the step they agreed on must restore in one process
(replicated state) and continue the same run.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from sslax.config import apply_overrides, load_config
from sslax.train.loop import train
from sslax.train.metrics import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "experiments", "simclr_digits.py:smoke")
# 6 steps of 64, logged every step, a checkpoint every 2, a kNN monitor at step 2 (evaluation
# across processes)
OVERRIDES = ["train.num_steps=6", "train.log_every=1", "train.checkpoint_every=2", "train.knn_every=2",
             "eval.monitor_max_train=512", "eval.linear_probe=False"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _config():
  return apply_overrides(load_config(CONFIG), OVERRIDES)


def _losses(workdir):
  return {r["step"]: r["loss"] for r in read_metrics(workdir) if "loss" in r}


def _committed_step(output: str) -> int:
  m = re.search(r"step (\d+): stopped by a preemption notice \(SIGTERM to one of the processes\) with step "
                r"\d+ committed", output)
  assert m, f"expected the preemption message, got:\n{output[-3000:]}"
  return int(m.group(1))


def test_two_processes_equal_one_stop_together_on_one_sigterm_and_restore_in_one(tmp_path):
  """SIGTERM reaches one of the two processes mid-run: through JAX's preemption service both
  learn the same step, save it together and exit 143 (a process that saved alone would hang the
  other in the collective save). One process of 8 devices then resumes that checkpoint, and the
  losses of steps 1-6 equal a straight one-process run's."""
  reference = tmp_path / "one_process"
  train(_config(), str(reference), progress=False)

  workdir = tmp_path / "two_processes"
  port = _free_port()
  env = dict(os.environ)
  # 4 devices per process; the rest of the test flags (optimization level, compile cache) as the parent
  env["XLA_FLAGS"] = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")) + \
      " --xla_force_host_platform_device_count=4"
  cmd = [sys.executable, "-m", "sslax.cli", "train", "--config", CONFIG, "--workdir", str(workdir),
         "--no_progress", "--coordinator_address", f"localhost:{port}", "--num_processes", "2"]
  # a kNN monitor after every step (seconds each across processes; it does not change training)
  # leaves the notice, sent once step 1 is logged, steps to land in before the run's end
  cmd += [a for o in OVERRIDES + ["sharding.rules=(('.*', 'fsdp'),)", "train.knn_every=1"] for a in ("--set", o)]
  logs = [open(tmp_path / f"process_{i}.log", "w+") for i in range(2)]
  procs = [subprocess.Popen(cmd + ["--process_id", str(i)], env=env, cwd=ROOT, stdout=logs[i],
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  try:
    deadline = time.time() + 400
    while not any(r.get("step", 0) >= 1 and "loss" in r for r in _read(workdir)):
      if time.time() > deadline or any(p.poll() is not None for p in procs):
        pytest.fail("the 2-process run did not log step 1: " + "\n".join(_tail(f) for f in logs))
      time.sleep(0.1)
    procs[1].send_signal(signal.SIGTERM)  # process 1 only
    for p in procs:
      p.wait(timeout=300)
  except subprocess.TimeoutExpired:
    pytest.fail("the 2-process run did not stop within 300 s of the notice: " + "\n".join(_tail(f) for f in logs))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  outs = [_tail(f, 100_000) for f in logs]
  for i, (p, out) in enumerate(zip(procs, outs)):
    assert p.returncode == 143, f"process {i} exited {p.returncode}:\n{out[-3000:]}"
  assert "process 1 of 2: 4 local devices, 8 in all" in outs[1]
  stopped = [_committed_step(out) for out in outs]
  assert stopped[0] == stopped[1] and 1 <= stopped[0] < 6, stopped
  step = stopped[0]

  # the checkpoint of that step holds one data position per process, and both were written
  data_dir = workdir / "checkpoints" / str(step) / "data"
  assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(os.listdir(data_dir))
  assert max(int(d) for d in os.listdir(workdir / "checkpoints") if d.isdigit()) == step

  # one process, 8 devices, picks up the 2-process checkpoint and finishes the run
  resumed = train(_config(), str(workdir), progress=False)
  assert resumed is not None and int(resumed.state.step) == 6

  expected, got = _losses(reference), _losses(workdir)
  assert sorted(got) == list(range(1, 7)) == sorted(expected)
  np.testing.assert_allclose([got[s] for s in range(1, 7)], [expected[s] for s in range(1, 7)], rtol=1e-5)
  monitor = [r for r in read_metrics(workdir) if "monitor/knn_top1" in r and r["step"] == 2]
  ref_monitor = [r for r in read_metrics(reference) if "monitor/knn_top1" in r]
  assert monitor[0]["monitor/knn_top1"] == pytest.approx(ref_monitor[0]["monitor/knn_top1"], abs=1e-6)


def _read(workdir):
  try:
    return read_metrics(str(workdir))
  except (OSError, ValueError):  # not there yet, or a line being written
    return []


def _tail(f, n=3000):
  f.flush()
  f.seek(0)
  return f.read()[-n:]
