"""The tables of RESULTS.md's SpanBERT, NLI, extractive QA, CoVe, contextual-vector, XLNet and
T5 / BART sections (issue 32) from the run folders their commands write under runs/.

  python experiments/language_transfer_table.py [runs]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _load(path):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _f(x, digits=4):
  return "" if x is None else f"{x:.{digits}f}"


def spanbert(root):
  rows = [("random init (the same encoder, same seed)", _load(f"{root}/spanbert/random.json")),
          ("span masking, no SBO (`bert_text.py:cpu --set method.masking=span`)", _load(f"{root}/spanbert/span/report.json")),
          ("span masking + SBO (`spanbert_text.py:cpu`)", _load(f"{root}/spanbert/sbo/report.json"))]
  print("| encoder (1,000 steps) | SST-2 dev linear top-1 | SST-2 dev kNN top-1 | held-out MLM accuracy | held-out SBO accuracy |")
  print("|---|---|---|---|---|")
  for name, r in rows:
    if r:
      print(f"| {name} | {_f(r.get('linear_top1'))} | {_f(r.get('knn_top1'))} | {_f(r.get('heldout/mlm_accuracy'))} | "
            f"{_f(r.get('heldout/sbo_accuracy'))} |")
  print()


def nli(root):
  print("| task (train -> test) | pairs | fine-tuned from SpanBERT + SBO | from random init | majority class |")
  print("|---|---|---|---|---|")
  from text_common import nli_probe

  majority = {}
  for task in ("snli", "sick", "rte"):  # the most frequent test label's share
    probe = nli_probe(task)
    if not os.path.exists(probe.paths.test):  # written by the section's first command
      continue
    with open(probe.paths.test, encoding="utf-8") as f:
      header = f.readline().rstrip("\n").split("\t")
      labels = [line.rstrip("\n").split("\t")[header.index(probe.label_column)] for line in f if line.strip()]
    majority[task] = max(labels.count(x) for x in set(labels)) / len(labels)
  for task, split in (("snli", "SNLI dev -> test"), ("sick", "SICK train -> test"), ("rte", "RTE train -> dev")):
    p, r = _load(f"{root}/nli/{task}_pretrained.json"), _load(f"{root}/nli/{task}_random.json")
    if p and r and task in majority:
      print(f"| {split} | {p['num_labelled']:,} | {_f(p['top1'])} | {_f(r['top1'])} | {_f(majority[task])} |")
  p, r = _load(f"{root}/nli/rte_minilm.json"), _load(f"{root}/nli/rte_minilm_random.json")
  if p and r:
    print(f"| RTE, all-MiniLM-L6-v2 (Hugging Face weights) | {p['num_labelled']:,} | {_f(p['top1'])} (HF weights) | "
          f"{_f(r['top1'])} | |")
  print()


def qa(root):
  print("| encoder | exact match | F1 | train questions / windows | test questions / windows |")
  print("|---|---|---|---|---|")
  for name, path in (("random init", "qa/random.json"), ("pretrained (SpanBERT + SBO, 1,000 steps)", "qa/pretrained.json")):
    r = _load(f"{root}/{path}")
    if r:
      print(f"| {name} | {r['exact_match']:.2f} | {r['f1']:.2f} | {r['train_questions']:,} / {r['train_windows']:,} | "
            f"{r['test_questions']:,} / {r['test_windows']:,} |")
  print()


def _probe_table(root, first_column, rows):
  """One row per (name, report path): the frozen SST-2 probes and the held-out target accuracy."""
  print(f"| {first_column} | SST-2 dev linear top-1 | SST-2 dev kNN top-1 | held-out target accuracy |")
  print("|---|---|---|---|")
  for name, path in rows:
    r = _load(f"{root}/{path}")
    if r:
      print(f"| {name} | {_f(r.get('linear_top1'))} | {_f(r.get('knn_top1'))} | {_f(r.get('heldout/target_accuracy'))} |")
  print()


def cove(root):
  _probe_table(root, "encoder", (("random init", "cove/random.json"),
                                 ("CoVe: translation en -> fr, de, 1,000 steps", "cove/pud/report.json")))


def contextual(root):
  r = _load(f"{root}/contextual/report.json")
  if not r:
    return
  print("| vectors | layer | self-similarity, same article | self-similarity, other articles | different-word "
        "baseline | other articles - baseline | nearest occurrence is the same word |")
  print("|---|---|---|---|---|---|---|")
  for name, label in (("pretrained", "SpanBERT + SBO"), ("random_init", "same encoder, random init")):
    for i, v in enumerate(r[name].values()):
      print(f"| {label} | {i + 1} | {_f(v['self_similarity_same_article'])} | {_f(v['self_similarity_other_article'])} | "
            f"{_f(v['different_word_baseline'])} | "
            f"{_f(v['self_similarity_other_article'] - v['different_word_baseline'])} | {_f(v['nearest_is_same_word'])} |")
  w = r["word2vec_vectors"]
  print(f"| word2vec CBOW | | {_f(w['self_similarity_same_article'])} | {_f(w['self_similarity_other_article'])} | "
        f"{_f(w['different_word_baseline'])} | {_f(w['self_similarity_other_article'] - w['different_word_baseline'])} | "
        f"{_f(w['nearest_is_same_word'])} |")
  print()


def xlnet(root):
  print("| model (last 10% of tinyshakespeare held out) | held-out left-to-right perplexity | next-token accuracy |")
  print("|---|---|---|")
  for name, path in (("XLNet at random init", "xlnet/random.json"), ("XLNet pretrained, 1,000 steps", "xlnet/cpu/report.json")):
    r = _load(f"{root}/{path}")
    if r and "heldout/perplexity" in r:
      print(f"| {name} | {r['heldout/perplexity']:.1f} | {_f(r.get('heldout/lm_accuracy'))} |")
  print()


def denoising(root):
  _probe_table(root, "encoder (SST-2 sentences, 2,000 steps)", (
      ("T5 encoder-decoder at random init", "t5/random.json"), ("T5 span corruption", "t5/cpu/report.json"),
      ("BART encoder-decoder at random init", "bart/random.json"), ("BART denoising", "bart/cpu/report.json")))


def main(root="runs"):
  for table in (spanbert, nli, qa, cove, contextual, xlnet, denoising):
    table(root)


if __name__ == "__main__":
  main(*sys.argv[1:])
