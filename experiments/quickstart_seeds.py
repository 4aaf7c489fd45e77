"""Runs the quickstart (SimCLR on digits) for several seeds and prints a Markdown table.

python experiments/quickstart_seeds.py --seeds 0 1 2 --workdir runs/quickstart_seeds
"""
import argparse
import json
import os
import time

import numpy as np

from sslax.quickstart import run_quickstart


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--workdir", default="runs/quickstart_seeds")
  args = parser.parse_args()
  rows = []
  for seed in args.seeds:
    start = time.perf_counter()
    report = run_quickstart(os.path.join(args.workdir, f"seed{seed}"), seed=seed, progress=False)
    report["wall_seconds"] = time.perf_counter() - start
    rows.append(report)
  keys = ["raw_pixels_top1", "random_init_top1", "simclr_top1", "simclr_knn_top1", "wall_seconds"]
  print("\n| seed | (a) raw pixels | (b) random init | (c) SimCLR | SimCLR kNN | wall s |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['seed']} | " + " | ".join(f"{r[k]:.4f}" if k != "wall_seconds" else f"{r[k]:.0f}" for k in keys) + " |")
  means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
  stds = {k: float(np.std([r[k] for r in rows])) for k in keys}
  print("| mean ± std | " + " | ".join(f"{means[k]:.4f} ± {stds[k]:.4f}" if k != "wall_seconds"
                                       else f"{means[k]:.0f}" for k in keys) + " |")
  with open(os.path.join(args.workdir, "summary.json"), "w") as f:
    json.dump({"runs": rows, "mean": means, "std": stds}, f, indent=2)


if __name__ == "__main__":
  main()
