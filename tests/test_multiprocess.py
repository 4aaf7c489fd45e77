"""Two processes of 4 CPU devices each on loopback (jax.distributed, Gloo) train as one 8-device run.

The 2-process run goes through the CLI as a user would launch it on two
hosts, with FSDP (parameters and optimizer state split over all 8 devices);
its per-step losses must equal those of one data-parallel process with 8
devices, and its checkpoint must restore in one process (replicated state)
and continue the same run.
"""
import os
import re
import socket
import subprocess
import sys

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


def test_two_processes_equal_one_and_their_checkpoint_restores_in_one(tmp_path):
  reference = tmp_path / "one_process"
  train(_config(), str(reference), progress=False)

  workdir = tmp_path / "two_processes"
  port = _free_port()
  env = dict(os.environ)
  # 4 devices per process; the rest of the test flags (optimization level, compile cache) as the parent
  env["XLA_FLAGS"] = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")) + \
      " --xla_force_host_platform_device_count=4"
  cmd = [sys.executable, "-m", "sslax.cli", "train", "--config", CONFIG, "--workdir", str(workdir),
         "--no_progress", "--stop_at", "4", "--coordinator_address", f"localhost:{port}", "--num_processes", "2"]
  cmd += [a for o in OVERRIDES + ["sharding.rules=(('.*', 'fsdp'),)"] for a in ("--set", o)]
  procs = [subprocess.Popen(cmd + ["--process_id", str(i)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=400)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      pytest.fail("the 2-process run did not finish in 400 s")
  for i, (p, out) in enumerate(zip(procs, outs)):
    assert p.returncode == 0, f"process {i} exited {p.returncode}:\n{out[-3000:]}"
  assert "process 1 of 2: 4 local devices, 8 in all" in outs[1]

  # the checkpoint of step 4 holds one data position per process, and both were written
  data_dir = workdir / "checkpoints" / "4" / "data"
  assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(os.listdir(data_dir))

  # one process, 8 devices, picks up the 2-process checkpoint and finishes the run
  resumed = train(_config(), str(workdir), progress=False)
  assert resumed is not None and int(resumed.state.step) == 6

  expected, got = _losses(reference), _losses(workdir)
  assert sorted(got) == list(range(1, 7)) == sorted(expected)
  np.testing.assert_allclose([got[s] for s in range(1, 7)], [expected[s] for s in range(1, 7)], rtol=1e-5)
  monitor = [r for r in read_metrics(workdir) if "monitor/knn_top1" in r]
  ref_monitor = [r for r in read_metrics(reference) if "monitor/knn_top1" in r]
  assert monitor[0]["step"] == 2 and monitor[0]["monitor/knn_top1"] == pytest.approx(
      ref_monitor[0]["monitor/knn_top1"], abs=1e-6)
