"""Prints the CIFAR-10 method table (markdown) from the workdirs of run_cifar10_table.sh.

  python experiments/cifar10_table.py runs/table
Reads <dir>/<method>/report.json and metrics.jsonl (last logged collapse
metrics, run time) and <dir>/random_init.json.
"""
import json
import os
import sys

from sslax.train.metrics import read_metrics

METHODS = ("simclr", "byol", "simsiam", "moco", "vicreg", "barlow_twins", "dino", "rotation", "context_encoder",
           "denoising_ae", "swav", "jigsaw", "relative_position", "triplet", "colorization", "cmc", "deepcluster")
# random-init baselines beside random_init.json that also hold the per-stage probe
BASELINES = ("random_init.json", "random_init_ae.json", "random_init_standardized.json", "random_init_colorization.json",
             "random_init_cmc.json", "random_init_deepcluster.json")


def main(root: str) -> None:
  baseline = json.load(open(os.path.join(root, "random_init.json")))
  print("| method | linear top-1 | kNN top-1 | std * sqrt(d) | effective rank | alarm | minutes |")
  print("|---|---|---|---|---|---|---|")
  print(f"| random init (same encoder) | {baseline['linear_top1']:.4f} | {baseline['knn_top1']:.4f} | | | | |")
  for m in METHODS:
    path = os.path.join(root, m, "report.json")
    if not os.path.exists(path):
      continue
    report = json.load(open(path))
    records = read_metrics(os.path.join(root, m))
    last = [r for r in records if "collapse/std_ratio" in r][-1]
    alarms = sum(1 for r in records if r.get("collapse/alarm"))
    minutes = (records[-1]["time"] - records[0]["time"]) / 60 if "time" in records[0] else float("nan")
    print(f"| {m} | {report['linear_top1']:.4f} | {report['knn_top1']:.4f} | {last['collapse/std_ratio']:.3f} "
          f"| {last['collapse/rank']:.1f} | {alarms} | {minutes:.1f} |")
  stage_table(root)


def stage_table(root: str) -> None:
  """The per-stage linear probe (`LayerProbe`) of every run and baseline that has one."""
  rows = []
  for m in METHODS:
    path = os.path.join(root, m, "report.json")
    if os.path.exists(path):
      rows.append((m, json.load(open(path))))
  for name in BASELINES:
    path = os.path.join(root, name)
    if os.path.exists(path):
      rows.append((name[:-5], json.load(open(path))))
  rows = [(m, r) for m, r in rows if "layer/best_linear_top1" in r]
  stages = sorted({k.split("/")[1] for _, r in rows for k in r if k.startswith("layer/stage")})
  if not rows:
    return
  print()
  print("| method | " + " | ".join(stages) + " | best |")
  print("|---|" + "---|" * (len(stages) + 1))
  for m, r in rows:
    cells = [f"{r[f'layer/{s}/linear_top1']:.4f}" if f"layer/{s}/linear_top1" in r else "" for s in stages]
    print(f"| {m} | " + " | ".join(cells) + f" | {r['layer/best_linear_top1']:.4f} |")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/table")
