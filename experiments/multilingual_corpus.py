"""The unlabelled English, French and German text for the cross-lingual MLM
(`experiments/xling_text.py`), one sentence or paragraph per TSV row (column `text`):
UD English-EWT train, French-GSD dev and German-GSD dev sentences (the `# text` lines, no tags),
and the English and German XQuAD contexts. The POS test sets (GSD test, PUD) are not in it.

  python experiments/multilingual_corpus.py     # -> runs/xling/corpus.tsv
"""
import json
import os

from text_common import TEXT, UD_EWT

OUT = "runs/xling/corpus.tsv"
UD = f"{TEXT}/ud_multilingual"
SOURCES = {"en": [f"{UD_EWT}/en_ewt-ud-train.conllu"], "fr": [f"{UD}/UD_French-GSD/fr_gsd-ud-dev.conllu"],
           "de": [f"{UD}/UD_German-GSD/de_gsd-ud-dev.conllu"]}
XQUAD = {"en": f"{TEXT}/xquad/xquad.en.json", "de": f"{TEXT}/xquad/xquad.de.json"}


def conllu_texts(path):
  with open(path, encoding="utf-8") as f:
    return [line.split("=", 1)[1].strip() for line in f if line.startswith("# text = ")]


def main():
  rows, counts = [], {}
  for lang, paths in SOURCES.items():
    for p in paths:
      texts = conllu_texts(p)
      rows += texts
      counts[lang] = counts.get(lang, 0) + len(texts)
  for lang, p in XQUAD.items():
    with open(p, encoding="utf-8") as f:
      contexts = [par["context"] for art in json.load(f)["data"] for par in art["paragraphs"]]
    rows += contexts
    counts[f"xquad_{lang}"] = len(contexts)
  os.makedirs(os.path.dirname(OUT), exist_ok=True)
  with open(OUT, "w", encoding="utf-8") as f:
    f.write("text\n" + "".join(" ".join(r.replace("\t", " ").split()) + "\n" for r in rows))
  print(f"{OUT}: {len(rows)} rows {counts}")


if __name__ == "__main__":
  main()
