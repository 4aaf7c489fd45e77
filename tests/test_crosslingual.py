"""Cross-lingual pieces: the byte-level vocabulary shared by every language, UD's UPOS ids in one
order for every treebank, and a tagger fine-tuned on one treebank scored on another
(`experiments/crosslingual_pos.py`)."""
import json
import os
import sys

import numpy as np
import pytest

from helpers import ROOT
from sslax.data.conll import UPOS_TAGS, conll_file_sources
from sslax.data.tokenize import train_tokenizer


def test_byte_vocabulary_covers_every_script_with_offsets():
  tok = train_tokenizer([], kind="bytes", vocab_size=261)
  for text in ("Héllo wörld", "Привет мир", "« Alors »", "東京"):
    e = tok.encode(text, add_special_tokens=False)
    assert len(e.ids) == len(text.encode("utf-8")) and min(e.ids) >= 5  # one id per byte, after the specials
    assert tok.decode(e.ids) == text
    assert all(text[a:b] for a, b in e.offsets)  # every byte points into its character
  assert [tok.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
  with pytest.raises(ValueError, match="data.vocab_size: expected 261 for the byte-level vocabulary"):
    train_tokenizer([], kind="bytes", vocab_size=4096)


def _treebank(path, sentences):
  row = "{}\t{}\t_\t{}\t_\t_\t0\troot\t_\t_"
  with open(path, "w") as f:
    for i, words in enumerate(sentences):
      f.write(f"# sent_id = {i}\n# text = {' '.join(w for w, _ in words)}\n")
      f.write("\n".join(row.format(j + 1, w, t) for j, (w, t) in enumerate(words)) + "\n\n")
  return str(path)


_EN = {"dog": "NOUN", "cat": "NOUN", "runs": "VERB", "sleeps": "VERB", "the": "DET", "a": "DET", "big": "ADJ"}
_FR = {"chien": "NOUN", "chat": "NOUN", "court": "VERB", "dort": "VERB", "le": "DET", "un": "DET"}


def _sentences(lexicon, n, seed):
  rng = np.random.default_rng(seed)
  by_tag = {t: [w for w, x in lexicon.items() if x == t] for t in set(lexicon.values())}
  out = []
  for _ in range(n):
    tags = ["DET", "NOUN", "VERB"] if "ADJ" not in by_tag or rng.random() < 0.5 else ["DET", "ADJ", "NOUN", "VERB"]
    out.append([(str(rng.choice(by_tag[t])), t) for t in tags])
  return out


def test_upos_ids_are_the_same_in_every_treebank(tmp_path):
  en = _treebank(tmp_path / "en.conllu", _sentences(_EN, 5, 0))
  fr = _treebank(tmp_path / "fr.conllu", _sentences(_FR, 5, 1) + [[("ok", "INTJ"), ("?", "WEIRD")]])
  names_en = conll_file_sources({"train": en}, str(tmp_path / "d1"), conllu=True)["train"].tag_names["upos"]
  source_fr = conll_file_sources({"train": fr}, str(tmp_path / "d2"), conllu=True)["train"]
  names_fr = source_fr.tag_names["upos"]
  assert names_en == list(UPOS_TAGS) and names_fr == list(UPOS_TAGS) + ["WEIRD"]  # a non-UD tag after the 17
  assert [names_fr[i] for i in source_fr[0]["upos"]][:2] == ["DET", "NOUN"]


def test_a_tagger_fine_tuned_on_one_treebank_is_scored_on_another(tmp_path):
  from sslax.cli import main

  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  import crosslingual_pos
  from sslax.config import load_config

  corpus = tmp_path / "corpus.tsv"
  words = list(_EN) + list(_FR)
  rng = np.random.default_rng(0)
  corpus.write_text("text\n" + "".join(" ".join(rng.choice(words, 5)) + "\n" for _ in range(100)))
  train = _treebank(tmp_path / "en_train.conllu", _sentences(_EN, 120, 2))
  dev = _treebank(tmp_path / "en_dev.conllu", _sentences(_EN, 30, 3))
  other = _treebank(tmp_path / "fr_test.conllu", _sentences(_FR, 30, 4))
  config = load_config(os.path.join(ROOT, "experiments", "xling_text.py:smoke"))
  config.unlock()
  config.data.paths = {"train": str(corpus), "test": str(corpus)}
  config.data.data_dir = str(tmp_path / "data")
  config.eval.probe_data.paths = {"train": train, "dev": dev}
  config.finetune.update({"steps": 80, "batch_size": 16, "lr": 1e-2, "warmup_steps": 5})
  config.lock()
  (tmp_path / "config.json").write_text(config.to_json())
  cfg = tmp_path / "cfg.py"
  cfg.write_text("import ml_collections, json\ndef get_config(arg=None):\n"
                 f"  return ml_collections.ConfigDict(json.load(open({str(tmp_path / 'config.json')!r})))\n")
  assert main(["finetune", "--config", str(cfg), "--random_init", "--finetune_dir", str(tmp_path / "pos"),
               "--output", str(tmp_path / "pos.json")]) == 0
  dev_top1 = json.load(open(tmp_path / "pos.json"))["top1"]
  scores = crosslingual_pos.score(str(tmp_path / "pos"), {"en_dev": dev, "fr_test": other})
  assert scores["en_dev"] == pytest.approx(dev_top1)  # the same words scored the same way as `sslax finetune`
  assert dev_top1 > 0.9, scores  # a 7-word English lexicon in fixed word orders
  assert 0.0 <= scores["fr_test"] <= 1.0
