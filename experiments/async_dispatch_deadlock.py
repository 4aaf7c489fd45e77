"""XLA:CPU deadlocks on a deep queue of 8-device steps with an all-reduce; one step ahead does not.

A jitted least-squares step over 8 forced host devices (inputs split over them, weights
replicated, so its gradient is all-reduced), dispatched `--steps` times while two busy-loop
processes load the CPUs, as a second test worker does. With `--mode unbounded` the host never
waits (JAX queues every step); with `--mode one_ahead` it waits for the step before last
(`sslax.dispatch.OneStepAhead`, what the train loop and fine-tuning do). In the unbounded mode
jaxlib 0.10.2 can leave some participants of an all-reduce out of its rendezvous for good, and
after 40 s XLA aborts the process (exit code 134, "Termination timeout ... Exiting to ensure a
consistent program state"). Each run is a subprocess, so an abort is counted, not fatal:

  python experiments/async_dispatch_deadlock.py --runs 4 --mode unbounded
  python experiments/async_dispatch_deadlock.py --runs 4 --mode one_ahead
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

_CHILD = r'''
import os, sys
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from sslax.dispatch import OneStepAhead
mesh = Mesh(np.array(jax.devices()), ("data",))
rep, dat = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
step = jax.jit(lambda w, x, y: w - 0.01 * jax.grad(lambda w: jnp.mean((jnp.tanh(x @ w) - y) ** 2))(w))
w = jax.device_put(jnp.zeros((64, 8)), rep)
ahead = OneStepAhead() if sys.argv[2] == "one_ahead" else (lambda outputs: None)
rng = np.random.default_rng(0)
for i in range(int(sys.argv[1])):
  x = jax.device_put(rng.random((64, 64), np.float32), dat)
  y = jax.device_put(rng.random((64, 8), np.float32), dat)
  w = step(w, x, y)
  ahead(w)  # not donated: the next step reads it too
w.block_until_ready()
'''


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=20000)
  parser.add_argument("--runs", type=int, default=4)
  parser.add_argument("--mode", choices=("unbounded", "one_ahead"), default="unbounded")
  parser.add_argument("--timeout", type=float, default=150)
  args = parser.parse_args()
  print(f"{os.cpu_count()} CPUs; {args.runs} runs of {args.steps} steps, {args.mode}")
  aborted = 0
  for run in range(args.runs):
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    start = time.perf_counter()
    try:
      out = subprocess.run([sys.executable, "-c", _CHILD, str(args.steps), args.mode], capture_output=True,
                           text=True, timeout=args.timeout, check=False)
      code, stuck = out.returncode, "Termination timeout" in out.stderr
    except subprocess.TimeoutExpired:
      code, stuck = "timeout", True
    finally:
      for p in load:
        p.kill()
    aborted += code != 0
    print(f"run {run}: exit {code}, {time.perf_counter() - start:.0f} s"
          + (", an all-reduce's rendezvous timed out" if stuck else ""), flush=True)
  print(f"{aborted} of {args.runs} runs aborted")


if __name__ == "__main__":
  main()
