"""Sentence pairs (NLI): `[CLS] a [SEP] b [SEP]` rows against the fast tokenizers' pair encoding,
TSV pairs with named labels and their errors, and a pair classifier fine-tuned through `sslax
finetune` that must read the second sentence and its segment embeddings."""
import json
import os
import re

import numpy as np
import pytest

from helpers import _FILLER, _NEGATIVE, _POSITIVE, text_smoke_config
from sslax.data.packing import pair_rows


def test_pair_rows_match_the_fast_tokenizers_longest_first():
  from tokenizers import Tokenizer, models, pre_tokenizers, processors

  vocab = {f"w{i}": i for i in range(50)} | {"[PAD]": 50, "[UNK]": 51, "[CLS]": 52, "[SEP]": 53}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                     special_tokens=[("[CLS]", 52), ("[SEP]", 53)])
  rng = np.random.default_rng(0)
  for seq_len in (5, 8, 13):  # even and odd room, ties, one text much longer
    tok.enable_truncation(max_length=seq_len, strategy="longest_first")
    pairs = [tuple(rng.integers(0, 50, n) for n in rng.integers(1, 15, 2)) for _ in range(150)]
    out = pair_rows([a for a, _ in pairs], [b for _, b in pairs], np.arange(150), seq_len=seq_len,
                    special_ids={"pad": 50, "cls": 52, "sep": 53})
    for r, (a, b) in enumerate(pairs):
      want = tok.encode(" ".join(f"w{i}" for i in a), " ".join(f"w{i}" for i in b))
      n = int(out["segments"][r].sum())
      assert list(out["ids"][r, :n]) == want.ids and list(out["type_ids"][r, :n]) == want.type_ids, (a, b)
      assert (out["ids"][r, n:] == 50).all() and (out["type_ids"][r, n:] == 0).all()
      np.testing.assert_array_equal(out["positions"][r, :n], np.arange(n))
    np.testing.assert_array_equal(out["label"], np.arange(150))


def _write_pairs(path, n=320, seed=0):
  """Pairs whose label ("positive" / "negative") is the sentiment of the second sentence only."""
  rng = np.random.default_rng(seed)
  rows = []
  for _ in range(n):
    label = int(rng.integers(2))
    a = " ".join(rng.choice(_FILLER, int(rng.integers(2, 8))))
    words = list(rng.choice(_FILLER, int(rng.integers(1, 6))))
    words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(_POSITIVE if label else _NEGATIVE)))
    rows.append(f"{a}\t{' '.join(words)}\t{'positive' if label else 'negative'}\t{len(rows)}")
  with open(path, "w") as f:
    f.write("premise\thypothesis\tjudgement\tidx\n" + "\n".join(rows) + "\n")
  return str(path)


def test_pair_tsv_with_label_names_and_bad_rows(tmp_path):
  from sslax.data import text_file_sources

  path = _write_pairs(tmp_path / "pairs.tsv", n=5)
  source = text_file_sources({"train": path}, str(tmp_path / "tfds"), fmt="tsv", text_column="premise",
                             pair_column="hypothesis", label_column="judgement",
                             label_names=("negative", "positive"))["train"]
  lines = open(path).read().splitlines()[1:]
  for i, line in enumerate(lines):
    a, b, label, _ = line.split("\t")
    record = source[i]
    assert (record["text"].decode(), record["text_b"].decode(), int(record["label"])) == (a, b, label == "positive")
  with open(path, "a") as f:
    f.write("a film\tthe plot\tunsure\t5\n")
  with pytest.raises(ValueError, match=re.escape(f"{path}:7: expected one of data.label_names ['negative', "
                                                 f"'positive'] in column 'judgement', got 'unsure'")):
    text_file_sources({"train": path}, str(tmp_path / "tfds2"), fmt="tsv", text_column="premise",
                      pair_column="hypothesis", label_column="judgement", label_names=("negative", "positive"))
  with pytest.raises(ValueError, match=re.escape("data.pair_column: expected one of the columns ['premise', "
                                                 "'hypothesis', 'judgement', 'idx']")):
    text_file_sources({"train": path}, str(tmp_path / "tfds3"), fmt="tsv", text_column="premise",
                      pair_column="second", label_column="judgement")


def test_finetune_a_pair_classifier_that_reads_the_second_sentence(tmp_path):
  import jax.numpy as jnp
  from flax import nnx

  from sslax.cli import main
  from sslax.data.packing import packed_text_source
  from sslax.methods import make_method

  config = text_smoke_config("bert", tmp_path / "corpus", tmp_path / "data")
  config.unlock()
  path = _write_pairs(tmp_path / "pairs.tsv")
  config.eval.probe_data.update({"paths": {"train": path, "test": _write_pairs(tmp_path / "test.tsv", n=200, seed=1)},
                                 "text_column": "premise", "pair_column": "hypothesis", "label_column": "judgement",
                                 "label_names": ("negative", "positive")})
  config.finetune.update({"steps": 60, "batch_size": 16, "lr": 1e-2, "warmup_steps": 5})
  config.lock()
  cfg = tmp_path / "cfg.py"
  (tmp_path / "config.json").write_text(config.to_json())
  cfg.write_text("import ml_collections, json\ndef get_config(arg=None):\n"
                 f"  return ml_collections.ConfigDict(json.load(open({str(tmp_path / 'config.json')!r})))\n")
  assert main(["finetune", "--config", str(cfg), "--random_init", "--output", str(tmp_path / "ft.json"),
               "--finetune_dir", str(tmp_path / "ft")]) == 0
  report = json.load(open(tmp_path / "ft.json"))
  assert report["top1"] > 0.85, report  # chance 0.5: only the second sentence has the answer

  # the rows carry type ids, and the network reads them (its segment embeddings)
  method = make_method(config)
  probe = method.probe_data()
  rows = packed_text_source(probe, "train")
  assert set(rows[0]) == {"ids", "segments", "positions", "type_ids", "label"}
  batch = {k: jnp.asarray(np.stack([rows[i][k] for i in range(4)])) for k in ("ids", "segments", "positions",
                                                                               "type_ids")}
  model = method.build_model(nnx.Rngs(0))
  flipped = dict(batch, type_ids=1 - batch["type_ids"])
  features = nnx.jit(method.features)
  assert float(jnp.abs(features(model, batch) - features(model, flipped)).max()) > 1e-3
  assert os.path.exists(tmp_path / "ft")


def test_pair_classifier_same_step_on_1_and_8_devices(tmp_path, devices):
  import jax

  from helpers import assert_same_step_on_1_and_8_devices
  from sslax.cli import finetune_config
  from sslax.data import get_source
  from sslax.data.packing import packed_text_source
  from sslax.methods import make_method, method_class

  config = text_smoke_config("bert", tmp_path / "corpus", tmp_path / "data", **{"model.dropout": 0.1})
  config.unlock()
  config.eval.probe_data.update({"paths": {"train": _write_pairs(tmp_path / "pairs.tsv", n=16),
                                           "test": _write_pairs(tmp_path / "pairs.tsv", n=16)},
                                 "text_column": "premise", "pair_column": "hypothesis", "label_column": "judgement",
                                 "label_names": ("negative", "positive")})
  config.finetune.train_mode = True  # dropout in the encoder, drawn from the step key
  config.lock()
  get_source(config.data, config.data.train_split)  # trains the pretraining tokenizer the probe reads with
  probe = make_method(config).probe_data()
  rows = packed_text_source(probe, "train")
  batch = {k: np.stack([rows[i][k] for i in range(8)]) for k in ("ids", "segments", "positions", "type_ids", "label")}
  run_config = finetune_config(config, probe, backbone="bert", task="classify", num_classes=2, batch_size=8)
  # two steps: the head starts at zero, so only the second moves the encoder
  _, _, delta = assert_same_step_on_1_and_8_devices(lambda: method_class("classify")(run_config), batch, devices,
                                                    steps=2)
  assert max(float(np.abs(x).max()) for x in jax.tree.leaves(delta["backbone"])) > 0
