"""Prints the PixelCNN table (markdown) from the workdirs of run_pixelcnn.sh.

  python experiments/pixelcnn_table.py runs/pixelcnn
Reads <dir>/<data>/report.json and metrics.jsonl, and <dir>/random_init_<data>.json.
"""
import json
import os
import sys

from masked_image_table import _best_block
from sslax.train.metrics import read_metrics

DATA = (("fashion_mnist", "Fashion-MNIST"), ("cifar10", "CIFAR-10"))


def _row(name, data, report, minutes=""):
  return (f"| {name} | {data} | {report['heldout/bits_per_dim']:.3f} | {report['heldout/marginal_bits_per_dim']:.3f} "
          f"| {report['heldout/uniform_bits_per_dim']:.1f} | {report['linear_top1']:.4f} | {_best_block(report)} "
          f"| {report['knn_top1']:.4f} | {minutes} |")


def main(root: str) -> None:
  print("| model | data | held-out bits/dim | marginal histogram bits/dim | uniform bits/dim | linear top-1 "
        "| best block, linear top-1 | kNN top-1 | minutes |")
  print("|---|---|---|---|---|---|---|---|---|")
  for key, data in DATA:
    init = os.path.join(root, f"random_init_{key}.json")
    if os.path.exists(init):
      print(_row("PixelCNN at random init", data, json.load(open(init))))
    path = os.path.join(root, key, "report.json")
    if os.path.exists(path):
      records = read_metrics(os.path.join(root, key))
      minutes = (records[-1]["time"] - records[0]["time"]) / 60 if "time" in records[0] else float("nan")
      print(_row("PixelCNN (cpu budget)", data, json.load(open(path)), f"{minutes:.1f}"))


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/pixelcnn")
