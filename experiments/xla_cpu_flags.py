"""sslax bench with and without XLA:CPU's YNNPACK dot/convolution (and reduction) fusions, one after the other.

Runs `experiments/bench.py` (sslax against PyTorch, interleaved) once per XLA_FLAGS setting,
each in a fresh process (XLA reads its flags once), and prints sslax / PyTorch per workload and
setting, and what the setting changes in sslax's own step time. `off` is jax's default
(SSLAX_XLA_CPU_FLAGS=0); `ynn-dot-reduce` is what `import sslax` sets with SSLAX_XLA_CPU_FLAGS=1 (sslax/xla_cpu.py).

  python experiments/xla_cpu_flags.py                          # CPU, float32, every workload
  python experiments/xla_cpu_flags.py --workloads simclr --set train.conv_impl='xla'
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = {"off": "", "ynn-dot": "--xla_cpu_experimental_ynn_fusion_type=dot",
            "ynn-dot-reduce": "--xla_cpu_experimental_ynn_fusion_type=dot,reduce"}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--settings", nargs="+", default=["off", "ynn-dot-reduce"], choices=list(SETTINGS))
  p.add_argument("--workloads", nargs="+", default=["simclr", "byol", "bert", "gpt"])
  p.add_argument("--set", action="append", default=[], help="sslax config overrides passed to the bench")
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--output", default=None, help="write both settings' bench JSON here")
  args = p.parse_args(argv)
  results = {}
  with tempfile.TemporaryDirectory() as tmp:
    for name in args.settings:
      env = dict(os.environ, SSLAX_XLA_CPU_FLAGS="0",
                 XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {SETTINGS[name]}".strip())
      out = os.path.join(tmp, f"{name}.json")
      cmd = [sys.executable, os.path.join(HERE, "bench.py"), "--workloads", *args.workloads,
             "--rounds", str(args.rounds), "--output", out]
      for o in args.set:
        cmd += ["--set", o]
      print(f"# {name}: XLA_FLAGS={env['XLA_FLAGS']!r}", flush=True)
      subprocess.run(cmd, env=env, check=True)
      with open(out) as f:
        results[name] = json.load(f)
  print("\n| workload | " + " | ".join(f"sslax / PyTorch, {n}" for n in args.settings) +
        " | sslax step time, " + " / ".join(args.settings) + " |")
  print("|---|" + "---|" * (len(args.settings) + 1))
  for i, w in enumerate(args.workloads):
    rows = [results[n]["rows"][i] for n in args.settings]
    base = rows[0]["sslax_s"]
    print(f"| {w} | " + " | ".join(f"{r['ratio']:.2f}x" for r in rows) + " | " +
          " / ".join(f"{r['sslax_s'] / base:.2f}" for r in rows) + " |")
  if args.output:
    with open(args.output, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
