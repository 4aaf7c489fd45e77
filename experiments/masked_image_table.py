"""Prints the ViT rows of the CIFAR-10 table (markdown) from the workdirs of run_masked_image.sh.

  python experiments/masked_image_table.py runs/table
Reads <dir>/<method>/report.json, metrics.jsonl and finetune.json, <dir>/random_init_vit.json and
<dir>/vit_scratch_finetune.json.
"""
import json
import os
import sys

from sslax.train.metrics import read_metrics

METHODS = ("mae", "simmim")


def _best_block(report):
  layers = {k.split("/")[1]: v for k, v in report.items() if k.startswith("layer/") and k.endswith("/linear_top1")}
  if not layers:
    return ""
  name = max(layers, key=layers.get)
  return f"{layers[name]:.4f} ({name})"


def _row(name, report, finetune, minutes=""):
  loss = report.get("heldout/reconstruction_loss")
  return (f"| {name} | {report['linear_top1']:.4f} | {_best_block(report)} | {report['knn_top1']:.4f} "
          f"| {'' if loss is None else f'{loss:.4f}'} | {finetune['top1']:.4f} | {minutes} |")


def main(root: str) -> None:
  print("| method | linear top-1 (final) | best block, linear top-1 | kNN top-1 | held-out reconstruction loss "
        "| fine-tuned top-1 (10k labels) | minutes |")
  print("|---|---|---|---|---|---|---|")
  baseline = json.load(open(os.path.join(root, "random_init_vit.json")))
  scratch = json.load(open(os.path.join(root, "vit_scratch_finetune.json")))
  print(_row("random init ViT-tiny (same encoder)", baseline, scratch))
  for m in METHODS:
    path = os.path.join(root, m, "report.json")
    if not os.path.exists(path):
      continue
    records = read_metrics(os.path.join(root, m))
    minutes = (records[-1]["time"] - records[0]["time"]) / 60 if "time" in records[0] else float("nan")
    print(_row(m, json.load(open(path)), json.load(open(os.path.join(root, m, "finetune.json"))), f"{minutes:.1f}"))


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/table")
