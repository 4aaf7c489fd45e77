"""`train` in a subprocess, for the preemption tests (real signals, real files).

  python tests/train_runner.py <method> <workdir> <num_steps> [--delay S] [--pause save@N|eval@N]

`--delay` sleeps S seconds before each batch is sharded, giving the test
time to signal mid-step. `--pause save@N` / `eval@N` writes
`<workdir>/paused` and waits for SIGTERM inside the checkpoint save / kNN evaluation
of step N, so a signal lands there. Neither changes any result. DINO runs
without local crops (see tests/test_preemption.py). Exits 143
when preempted; on completion writes every leaf of the final state to
`<workdir>/final_state.npz`.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if "--xla_force_host_platform_device_count=8" not in os.environ.get("XLA_FLAGS", ""):  # run by hand
  os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sslax.train.loop as loop  # noqa: E402
from helpers import method_digits_config  # noqa: E402
from sslax.train.checkpoint import Checkpointer  # noqa: E402
from sslax.train.preemption import Preempted  # noqa: E402

KNN_EVERY = 6


def _pause_in(workdir, what, at_step):
  marker = os.path.join(workdir, "paused")

  def pause():
    with open(marker, "w") as f:
      f.write(what)
    # until the test's signal has reached the run's handler (at most 30 s): inside evaluation the
    # handler raises at once; inside a save it only sets the notice, and the save goes on
    notice = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    deadline = time.time() + 30
    while time.time() < deadline and not getattr(notice, "requested", False):
      time.sleep(0.02)

  if what == "save":
    save = Checkpointer.save

    def slow_save(self, state, iterator, **kw):
      if int(state.step) == at_step and not os.path.exists(marker):
        pause()
      return save(self, state, iterator, **kw)

    Checkpointer.save = slow_save
  elif what == "eval":
    evaluate = loop.evaluate

    def slow_evaluate(method, state, *args, **kw):
      if int(state.step) == at_step and not os.path.exists(marker):
        pause()
      return evaluate(method, state, *args, **kw)

    loop.evaluate = slow_evaluate


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("method")
  parser.add_argument("workdir")
  parser.add_argument("steps", type=int)
  parser.add_argument("--delay", type=float, default=0.0)
  parser.add_argument("--pause", default="")
  args = parser.parse_args()
  if args.delay:
    to_global = loop.to_global

    def slow(batch, mesh):
      time.sleep(args.delay)
      return to_global(batch, mesh)

    loop.to_global = slow
  if args.pause:
    what, at = args.pause.split("@")
    _pause_in(args.workdir, what, int(at))
  config = method_digits_config(args.method, **{
      "train.num_steps": args.steps, "train.log_every": 1, "train.checkpoint_every": 4,
      "train.knn_every": KNN_EVERY, "eval.linear_probe": False, "eval.monitor_max_train": 256,
      **({"method.num_local_crops": 0} if args.method == "dino" else {})})
  try:
    result = loop.train(config, args.workdir, progress=False)
  except Preempted as e:
    print(f"preempted: {e}", file=sys.stderr)
    sys.exit(143)
  leaves = jax.tree.leaves(jax.device_get(result.state))
  np.savez(os.path.join(args.workdir, "final_state.npz"), **{f"leaf{i:04d}": np.asarray(x) for i, x in enumerate(leaves)})


if __name__ == "__main__":
  main()
