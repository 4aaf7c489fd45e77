"""`train` in a subprocess, for the preemption tests (real signals, real files).

  python tests/train_runner.py <method> <workdir> <num_steps> [seconds_per_step]

A delay per step (inserted before each batch is sharded; results unchanged)
gives the test time to send a signal mid-run. Exits 143 when preempted; on
completion writes the final state's leaves to <workdir>/final_state.npz.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import sslax.train.loop as loop  # noqa: E402
from helpers import method_digits_config  # noqa: E402
from sslax.train.preemption import Preempted  # noqa: E402


def main():
  method, workdir, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
  delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
  if delay:
    to_global = loop.to_global

    def slow(batch, mesh):
      time.sleep(delay)
      return to_global(batch, mesh)

    loop.to_global = slow
  config = method_digits_config(method, **{"train.num_steps": steps, "train.log_every": 1,
                                            "train.checkpoint_every": 4, "eval.linear_probe": False})
  try:
    result = loop.train(config, workdir, progress=False)
  except Preempted as e:
    print(f"preempted: {e}", file=sys.stderr)
    sys.exit(143)
  leaves = jax.tree.leaves(jax.device_get(result.state))
  np.savez(os.path.join(workdir, "final_state.npz"), **{f"leaf{i:04d}": np.asarray(x) for i, x in enumerate(leaves)})


if __name__ == "__main__":
  main()
