"""Every English text in `../shared/data/text` as one corpus for word2vec: a one-column TSV
(`text`), a row per sentence or paragraph, duplicates dropped, which `experiments/word2vec_text.py`
reads through the text-file pipeline like any TSV. Rows, not the lines of one `lines` document,
so that each ends with `</s>` and word2vec's windows stop there, as word2vec.c's stop at a newline.

  python experiments/word2vec_corpus.py [--output runs/word2vec/corpus.tsv]

Sources (the data README lists them): tinyshakespeare, WikiText-2 valid, the SST-2 train and dev
sentences, the sentences of UD English EWT (train, dev, test) and English PUD, the SNLI dev and
test premises and hypotheses, RTE's and SICK's sentence pairs, and the SQuAD v1.1 dev paragraphs
and questions (XQuAD's English part is a subset of those). Prints the line and word counts.
"""
import argparse
import csv
import glob
import json
import os

TEXT = "../shared/data/text"


def _tsv_columns(path, columns):
  with open(path, encoding="utf-8") as f:
    for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
      for c in columns:
        if row.get(c):
          yield row[c]


def _conllu_text(path):
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.startswith("# text ="):
        yield line[len("# text ="):]


def _lines(path):
  with open(path, encoding="utf-8") as f:
    yield from f


def _squad(path):
  with open(path, encoding="utf-8") as f:
    for article in json.load(f)["data"]:
      for para in article["paragraphs"]:
        yield para["context"]
        for qa in para["qas"]:
          yield qa["question"]


def sources(root=TEXT):
  yield from _lines(f"{root}/tinyshakespeare.txt")
  yield from _lines(f"{root}/wikitext2_valid.txt")
  for split in ("train", "dev"):
    yield from _tsv_columns(f"{root}/sst2/{split}.tsv", ("sentence",))
  for path in sorted(glob.glob(f"{root}/ud_en_ewt/*.conllu")) + sorted(glob.glob(f"{root}/ud_multilingual/UD_English-PUD/*.conllu")):
    yield from _conllu_text(path)
  for name in ("s1.dev", "s2.dev", "s1.test", "s2.test"):
    yield from _lines(f"{root}/nli/snli/{name}")
  for split in ("train", "dev", "test"):
    yield from _tsv_columns(f"{root}/nli/rte/{split}.tsv", ("sentence1", "sentence2"))
  for name in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
    yield from _tsv_columns(f"{root}/nli/sick/{name}", ("sentence_A", "sentence_B"))
  yield from _squad(f"{root}/squad_v1.1/dev-v1.1.json")


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--output", default="runs/word2vec/corpus.tsv")
  args = parser.parse_args()
  seen, lines, words = set(), 0, 0
  os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
  with open(args.output, "w", encoding="utf-8") as out:
    out.write("text\n")
    for text in sources():
      text = " ".join(text.split())  # no tabs or newlines inside a row
      if text and text not in seen:
        seen.add(text)
        out.write(text + "\n")
        lines, words = lines + 1, words + len(text.split())
  print(f"{args.output}: {lines} rows, {words} whitespace-separated words")


if __name__ == "__main__":
  main()
