"""The count baseline of UPOS tagging on the UD treebank of `experiments/bert_ud.py`: each dev
word gets its most frequent tag in the training sentences (case-sensitive form, then lower-cased),
an unseen word the most frequent tag overall. Same records as the fine-tuning runs (the CoNLL-U
builder), every dev word scored.

  python experiments/ud_majority_baseline.py
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from text_common import ud_probe  # noqa: E402

from sslax.data.conll import conll_file_sources  # noqa: E402


def main():
  probe = ud_probe()
  sources = conll_file_sources(dict(probe.paths), conllu=True)
  train, dev = sources["train"], sources["dev"]
  names = train.tag_names["upos"]
  by_form = collections.defaultdict(collections.Counter)
  by_lower = collections.defaultdict(collections.Counter)
  overall = collections.Counter()
  for i in range(len(train)):
    r = train[i]
    for w, t in zip(r["tokens"], r["upos"]):
      w = w.decode()
      by_form[w][int(t)] += 1
      by_lower[w.lower()][int(t)] += 1
      overall[int(t)] += 1
  default = overall.most_common(1)[0][0]
  right = total = unseen = 0
  for i in range(len(dev)):
    r = dev[i]
    for w, t in zip(r["tokens"], r["upos"]):
      w = w.decode()
      counts = by_form.get(w) or by_lower.get(w.lower())
      unseen += counts is None
      guess = counts.most_common(1)[0][0] if counts else default
      right += guess == int(t)
      total += 1
  print(json.dumps({"majority_tag_top1": right / total, "dev_words": total, "unseen_dev_words": unseen,
                    "default_tag": names[default]}, indent=2))


if __name__ == "__main__":
  main()
