"""Zero-shot cross-lingual UPOS tagging: a tagger fine-tuned on English EWT (`sslax finetune` of
`experiments/xling_text.py`) scored on French and German treebanks it never saw tags of (GSD
test, the parallel PUD sentences) and on English PUD, with the same byte-level vocabulary; tag
ids are UD's 17 in one order for every treebank (`sslax.data.conll.UPOS_TAGS`).

  python experiments/crosslingual_pos.py runs/xling/pos [runs/xling/pos_random ...] --output runs/xling/pos.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_json import emit  # noqa: E402
from text_common import TEXT, UD_EWT  # noqa: E402

UD = f"{TEXT}/ud_multilingual"
TREEBANKS = {"en_ewt_dev": f"{UD_EWT}/en_ewt-ud-dev.conllu",
             "en_pud": f"{UD}/UD_English-PUD/en_pud-ud-test.conllu",
             "fr_gsd_test": f"{UD}/UD_French-GSD/fr_gsd-ud-test.conllu",
             "fr_pud": f"{UD}/UD_French-PUD/fr_pud-ud-test.conllu",
             "de_gsd_test": f"{UD}/UD_German-GSD/de_gsd-ud-test.conllu",
             "de_pud": f"{UD}/UD_German-PUD/de_pud-ud-test.conllu"}


def score(finetune_dir: str, treebanks: dict[str, str]) -> dict[str, float]:
  """{treebank: UPOS accuracy over its words} of the tagger in `finetune_dir`."""
  import ml_collections

  from sslax.cli import _restore
  from sslax.data.packing import packed_text_source
  from sslax.eval.downstream import accuracy, predictions

  with open(os.path.join(finetune_dir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  method, mesh, state, _, _ = _restore(types.SimpleNamespace(workdir=finetune_dir, random_init=False, step=None),
                                       config)
  out = {}
  for name, path in treebanks.items():
    data = ml_collections.ConfigDict(config.data.to_dict())
    data.paths, data.train_split, data.eval_split = {"train": path, "eval": path}, "train", "eval"
    out[name] = accuracy(*predictions(method, state, mesh, packed_text_source(data, "eval")))
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("finetune_dirs", nargs="+")
  p.add_argument("--output", default=None)
  args = p.parse_args(argv)
  report = {d: score(d, TREEBANKS) for d in args.finetune_dirs}
  emit(report, args.output)
  return report


if __name__ == "__main__":
  main()
