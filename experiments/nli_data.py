"""SNLI 1.0 dev and test (`../shared/data/text/nli/snli`: one sentence or label per line in three
parallel files) as the TSV files `experiments/text_common.nli_probe('snli')` reads:
runs/nli/snli_{dev,test}.tsv with the columns sentence1, sentence2, label (a label name).

  python experiments/nli_data.py
"""
import os

from text_common import NLI, SNLI_TSV


def main():
  for split in ("dev", "test"):
    columns = []
    for name in ("s1", "s2", "labels"):
      with open(f"{NLI}/snli/{name}.{split}", encoding="utf-8") as f:
        columns.append([line.strip() for line in f])
    if len({len(c) for c in columns}) != 1:
      raise ValueError(f"SNLI {split}: expected parallel files of equal length, got {[len(c) for c in columns]}")
    out = SNLI_TSV.format(split=split)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
      f.write("sentence1\tsentence2\tlabel\n")
      for a, b, label in zip(*columns):
        if "\t" in a + b:
          raise ValueError(f"SNLI {split}: a tab inside a sentence: {a!r} / {b!r}")
        f.write(f"{a}\t{b}\t{label}\n")
    print(f"{out}: {len(columns[0])} pairs")


if __name__ == "__main__":
  main()
