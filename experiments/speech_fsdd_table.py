"""Prints the speech FSDD table (markdown) from the folder of run_speech_fsdd.sh.

  python experiments/speech_fsdd_table.py runs/speech_fsdd

Per method and its random init: digit and speaker probes of the last layer (linear, 20-NN), the
best single layer (linear; kNN) and SUPERB's softmax-weighted sum of all layers (linear; kNN of
the weighted standardized layers), beside the MFCC baseline; then speaker verification (recall@1 and
EER of cosine scores between test recordings, `sslax.eval.verification`) where a report has it.
"""
import json
import os
import sys

NAMES = {"mockingjay": "Mockingjay", "tera": "TERA", "apc": "APC", "hubert": "HuBERT", "hubert_iteration2": "HuBERT iteration 2", "cpc": "CPC", "cpc_speaker": "CPC, same-speaker negatives", "temporal_distance": "Temporal distance", "wavenet": "WaveNet", "wav2vec2": "wav2vec 2.0",
         "triplet": "Speaker triplet"}


def _load(path):
  with open(path) as f:
    return json.load(f)


def _layers(r, prefix):
  names = [k[len(prefix) + 6:-len("/linear_top1")] for k in r
           if k.startswith(f"{prefix}layer/") and k.endswith("/linear_top1") and "best" not in k
           and "weighted" not in k]
  return names


def _cells(r, prefix=""):
  names = _layers(r, prefix)
  best = max(names, key=lambda n: r[f"{prefix}layer/{n}/linear_top1"])
  return (f"{r[f'{prefix}linear_top1']:.4f} / {r[f'{prefix}knn_top1']:.4f}",
          f"{r[f'{prefix}layer/best_linear_top1']:.4f} ({best}) / {r[f'{prefix}layer/best_knn_top1']:.4f}",
          f"{r[f'{prefix}layer/weighted_linear_top1']:.4f} / {r[f'{prefix}layer/weighted_knn_top1']:.4f}")


def main(root: str) -> None:
  print("| features | digit: last layer (linear / kNN) | digit: best layer | digit: weighted sum "
        "| speaker: last layer | speaker: best layer | speaker: weighted sum |")
  print("|---|---|---|---|---|---|---|")
  mfcc = os.path.join(root, "mfcc.json")
  if os.path.exists(mfcc):
    m = _load(mfcc)
    print(f"| MFCC + deltas, mean and std (52 numbers) | {m['linear_top1']:.4f} / {m['knn_top1']:.4f} | | "
          f"| {m['speaker/linear_top1']:.4f} / {m['speaker/knn_top1']:.4f} | | |")
  for key, name in NAMES.items():
    for label, path in (("at random init", f"{key}_random_init.json"), ("pretrained", f"{key}/report.json")):
      path = os.path.join(root, path)
      if os.path.exists(path):
        r = _load(path)
        print(f"| {name} {label} | " + " | ".join(_cells(r) + _cells(r, "speaker/")) + " |")
  print()
  print("Layer weights of the digit weighted sum (pretrained):")
  print()
  for key, name in NAMES.items():
    path = os.path.join(root, key, "report.json")
    if os.path.exists(path):
      r = _load(path)
      names = sorted(_layers(r, ""), key=lambda n: (n != "input", len(n), n))  # input, layer_0, ..., layer_10
      weights = {n: r[f"layer/weight/{n}"] for n in names}
      print(f"- {name}: " + ", ".join(f"{n} {w:.2f}" for n, w in weights.items()))
  _verification(root)


def _verification(root: str) -> None:
  rows = []
  mfcc = os.path.join(root, "mfcc.json")
  if os.path.exists(mfcc) and "speaker/eer" in _load(mfcc):
    rows.append(("MFCC + deltas, mean and std", _load(mfcc)))
  for key, name in NAMES.items():
    for label, path in (("at random init", f"{key}_random_init.json"), ("pretrained", f"{key}/report.json")):
      path = os.path.join(root, path)
      if os.path.exists(path) and "speaker/eer" in _load(path):
        rows.append((f"{name} {label}", _load(path)))
  if not rows:
    return
  print()
  print("| features | speaker recall@1 | speaker EER | embedding: recall@1 | embedding: EER |")
  print("|---|---|---|---|---|")
  for name, r in rows:
    emb = (f"{r['speaker/embedding_recall@1']:.4f} | {r['speaker/embedding_eer']:.4f}"
           if "speaker/embedding_eer" in r else " | ")
    print(f"| {name} | {r['speaker/recall@1']:.4f} | {r['speaker/eer']:.4f} | {emb} |")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/speech_fsdd")
