"""A recipe's whole train step with `train.conv_impl='xla'` against `'im2col'`, on this machine.

For each config spec, compiles the real sslax step (one device, synthetic batch of the
recipe's shapes, as `sslax bench`) with XLA's convolutions and with `sslax.models.conv`'s, and
reports compile seconds, the median step time and the loss of the last step (equal up to rounding:
the two paths compute the same function).

  python experiments/conv_impl_steps.py simclr_cifar10.py:cpu dino_cifar10.py:cpu wav2vec2_fsdd.py:cpu
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import jax  # noqa: E402

from bench import compiled_step  # noqa: E402


def time_step(config, steps):
  _, _, state, batch, compiled, compile_s = compiled_step(config)
  times = []
  for _ in range(steps + 1):  # the first step is a warm-up
    t = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t)
  return compile_s, statistics.median(times[1:]), float(metrics["loss"])


def main(argv=None):
  from sslax.config import apply_overrides, load_config

  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("specs", nargs="+", help="config specs relative to experiments/, e.g. dino_cifar10.py:cpu")
  p.add_argument("--steps", type=int, default=3)
  args = p.parse_args(argv)
  print(f"# {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} cores")
  print("| recipe | batch | compile s xla / im2col | s/step xla / im2col | im2col speed-up | loss xla / im2col |")
  print("|---|---|---|---|---|---|")
  for spec in args.specs:
    res = {}
    for impl in ("xla", "im2col"):
      config = apply_overrides(load_config(os.path.join(HERE, spec)), [f"train.conv_impl='{impl}'"])
      res[impl] = time_step(config, args.steps)
    (cx, sx, lx), (ci, si, li) = res["xla"], res["im2col"]
    print(f"| {spec} | {config.train.batch_size} | {cx:.0f} / {ci:.0f} | {sx:.3f} / {si:.3f} | **{sx / si:.2f}x** "
          f"| {lx:.4f} / {li:.4f} |", flush=True)


if __name__ == "__main__":
  main()
