"""A bench workload's sslax step under several config overrides, timed interleaved in one process.

Each variant is the `sslax bench` step (same recipe, synthetic batch, one device) with its own
`--set`-style overrides; after a warm-up the variants run round-robin (A B C A B C ...), so drifts
in clock or load hit all of them alike, and the medians are compared to the first variant.

  python experiments/step_variants.py gpt "" "model.dropout=0.0" "model.attention_impl='xla'"
  python experiments/step_variants.py bert "" "model.attention_impl='xla'" --rounds 7

A variant is a comma-separated list of overrides ("" is the recipe as the bench runs it).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sslax import bench  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("workload", choices=sorted(bench.RECIPES["cpu"]))
  p.add_argument("variants", nargs="+", help="comma-separated overrides per variant; '' for the recipe")
  p.add_argument("--variant", default="cpu", choices=sorted(bench.RECIPES))
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--steps", type=int, default=2, help="steps per variant per round")
  args = p.parse_args(argv)
  steps = []
  for spec in args.variants:
    overrides = [o for o in spec.split(",") if o]
    config = bench._config(args.workload, args.variant, 0, "float32", overrides)
    _, _, state, batch, compiled, seconds = bench.compiled_step(config)
    holder = {"state": state}

    def step(holder=holder, compiled=compiled, batch=batch):
      holder["state"], metrics = compiled(holder["state"], batch)
      return jax.block_until_ready(metrics["loss"])
    step()
    steps.append(step)
    print(f"# compiled {spec or '(recipe)'} in {seconds:.1f} s", flush=True)
  times = [[] for _ in steps]
  for _ in range(args.rounds):
    for step, t in zip(steps, times):
      for _ in range(args.steps):
        start = time.perf_counter()
        step()
        t.append(time.perf_counter() - start)
  info = bench.cpu_description()
  print(f"# {args.workload} ({args.variant}), {info['cpu_model']} [{info['isa']}], {os.cpu_count()} cores, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; medians of {args.rounds} rounds x {args.steps} steps")
  print("| variant | ms/step | vs the first |")
  print("|---|---|---|")
  base = statistics.median(times[0])
  for spec, t in zip(args.variants, times):
    m = statistics.median(t)
    print(f"| {spec or '(recipe)'} | {m * 1e3:,.1f} | {base / m:.2f}x |")


if __name__ == "__main__":
  main()
