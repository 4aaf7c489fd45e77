"""Prints the wav2vec 2.0 FSDD tables (markdown) from the folder of run_wav2vec2_fsdd.sh.

  python experiments/wav2vec2_fsdd_table.py runs/wav2vec2_fsdd
"""
import json
import os
import sys

from sslax.train.metrics import read_metrics


def _load(root, name):
  with open(os.path.join(root, name)) as f:
    return json.load(f)


def main(root: str) -> None:
  rows = [("MFCC + deltas, mean and std (52 numbers)", _load(root, "mfcc.json")),
          ("wav2vec 2.0 at random init (same network)", _load(root, "random_init.json")),
          ("wav2vec 2.0 pretrained", _load(root, "pretrain/report.json"))]
  print("| features | digit linear | digit kNN | speaker linear | speaker kNN |")
  print("|---|---|---|---|---|")
  for name, r in rows:
    print(f"| {name} | {r['linear_top1']:.4f} | {r['knn_top1']:.4f} | {r['speaker/linear_top1']:.4f} "
          f"| {r['speaker/knn_top1']:.4f} |")
  print()
  pre, scratch = _load(root, "finetune_pretrained.json"), _load(root, "finetune_scratch.json")
  print("| fine-tuned on one recording per digit per speaker | labelled | digit top-1 (test) | train top-1 |")
  print("|---|---|---|---|")
  for name, r in (("from scratch", scratch), ("from the pretrained model", pre)):
    print(f"| {name} | {r['num_labelled']} | {r['top1']:.4f} | {r['train_top1']:.4f} |")
  print()
  records = [r for r in read_metrics(os.path.join(root, "pretrain")) if "loss" in r]
  print("| step | loss | contrastive | accuracy | prob. perplexity | code perplexity | Gumbel temp. |")
  print("|---|---|---|---|---|---|---|")
  stride = max(1, len(records) // 10)
  for r in records[::stride] + ([records[-1]] if (len(records) - 1) % stride else []):
    print(f"| {r['step']} | {r['loss']:.3f} | {r['contrastive_loss']:.3f} | {r['accuracy']:.3f} "
          f"| {r['prob_perplexity']:.1f} | {r['code_perplexity']:.1f} | {r['gumbel_temperature']:.3f} |")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/wav2vec2_fsdd")
