"""How long XLA takes to compile a recipe's train step, and how big the compiled program is.

  python experiments/compile_time.py dino_cifar10.py:smoke --devices 8 --test_flags
  python experiments/compile_time.py simclr_cifar10.py:cpu --set train.batch_size=64
  python experiments/compile_time.py dino_cifar10.py:smoke --devices 8 --test_flags --select where

Builds the recipe's real step (`make_train_step` over a data-parallel mesh of
`--devices` host devices, on a synthetic batch) and prints the seconds spent
tracing + lowering and compiling, and the size of XLA's optimized HLO (lines,
fusions). `--select where` builds the step as it was built before the
non-finite guard moved to one `cond` (`sslax/train/step.py`, `_keep_if`),
which is still how it is built on GPUs. `--test_flags` compiles as the test suite does
(`--xla_backend_optimization_level=0`, see tests/conftest.py). Leave
JAX_COMPILATION_CACHE_DIR unset, or the compile may be a cache hit.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("recipe", help="experiments/<file>.py:<variant>, e.g. dino_cifar10.py:smoke")
  parser.add_argument("--devices", type=int, default=1, help="host devices of the data-parallel mesh")
  parser.add_argument("--test_flags", action="store_true", help="XLA's backend optimization level 0, as in tests")
  parser.add_argument("--set", action="append", default=[], help="config override key=value (Python literal)")
  parser.add_argument("--select", choices=("auto", "cond", "where"), default="auto",
                      help="how a non-finite step keeps the old state (make_train_step's select_by_cond)")
  parser.add_argument("--hlo", default="", help="also write the optimized HLO text to this file")
  args = parser.parse_args(argv)
  flags = [f"--xla_force_host_platform_device_count={args.devices}"]
  if args.test_flags:
    flags.append("--xla_backend_optimization_level=0")
  os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

  from bench import HERE, step_inputs

  from sslax.config import apply_overrides, load_config
  from sslax.train import make_train_step

  config = apply_overrides(load_config(os.path.join(HERE, args.recipe)), args.set)
  method, tx, mesh, state, batch = step_inputs(config, args.devices)
  t0 = time.perf_counter()
  select_by_cond = {"auto": None, "cond": True, "where": False}[args.select]
  lowered = make_train_step(method, tx, mesh, select_by_cond=select_by_cond).lower(state, batch)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  hlo = compiled.as_text()
  if args.hlo:
    with open(args.hlo, "w") as f:
      f.write(hlo)
  print(f"{args.recipe} {' '.join(args.set)} on {args.devices} device(s), select {args.select}, XLA_FLAGS={os.environ['XLA_FLAGS']!r}")
  print(f"trace + lower {t1 - t0:.1f} s | compile {t2 - t1:.1f} s | optimized HLO {hlo.count(chr(10)):,} lines, "
        f"{hlo.count(' fusion('):,} fusions")


if __name__ == "__main__":
  main()
