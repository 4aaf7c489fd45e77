"""The image-text table of RESULTS.md from the run folders of `experiments/run_image_text.sh`.

  python experiments/image_text_table.py runs/lit
"""
import json
import os
import sys

ROWS = (("random_cpu.json", "random init (towers of `cpu`)"), ("clip_cpu", "CLIP `cpu` (both towers trained)"),
        ("align_cpu", "ALIGN recipe `align_cpu`"), ("siglip_cpu", "SigLIP `cpu` (chunked)"),
        ("random_lit.json", "random init (towers of `lit`: SST-2 tokenizer)"),
        ("clip_lit_image", "CLIP `lit_image` (SimCLR image tower locked)"),
        ("clip_lit", "CLIP `lit` (SimCLR + BERT towers locked)"))
KEYS = ("i2t_r@1", "i2t_r@5", "i2t_r@10", "t2i_r@1", "t2i_r@5", "t2i_r@10", "zeroshot_top1",
        "zeroshot_ensemble_top1", "linear_top1", "knn_top1")


def _report(root, name):
  path = os.path.join(root, name) if name.endswith(".json") else os.path.join(root, name, "report.json")
  if not os.path.exists(path):
    path = os.path.join(root, f"clip_{name}", "report.json")
  with open(path) as f:
    return json.load(f)


def main(root):
  print("| towers | " + " | ".join(KEYS) + " |")
  print("|---|" + "---|" * len(KEYS))
  for name, label in ROWS:
    try:
      r = _report(root, name)
    except FileNotFoundError:
      continue
    print(f"| {label} | " + " | ".join(f"{r[k]:.4f}" if k in r else "" for k in KEYS) + " |")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/lit")
