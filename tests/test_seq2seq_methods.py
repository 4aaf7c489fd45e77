"""T5 span corruption and BART denoising through the shared step: smoke runs (pretrain, held-out
loss, probe), 1 vs 8 devices, and config errors."""
import re

import numpy as np
import pytest

from helpers import assert_same_step_on_1_and_8_devices, text_smoke_config
from sslax.data import get_source
from sslax.methods import make_method
from sslax.train.loop import train


def test_smoke_pretrain_then_probe(tmp_path):
  config = text_smoke_config("t5", tmp_path / "corpus", tmp_path / "data")
  r = train(config, str(tmp_path / "run"), progress=False).report
  assert {"heldout/target_loss", "heldout/target_accuracy", "knn_top1", "linear_top1"} <= set(r)
  # 3 steps: about the uniform guess over the 300 ids (200 pieces + 100 sentinels), log 300 = 5.7
  assert abs(r["heldout/target_loss"] - np.log(300)) < 0.5, r
  assert r["knn_top1"] > 0.6, r  # sentiment words in the sentences; chance is ~0.5


def test_bart_smoke_pretrain_then_probe(tmp_path):
  config = text_smoke_config("bart", tmp_path / "corpus", tmp_path / "data")
  r = train(config, str(tmp_path / "run"), progress=False).report
  # 3 steps: about the uniform guess over the 200 pieces, log 200 = 5.3
  assert abs(r["heldout/target_loss"] - np.log(200)) < 0.5 and r["knn_top1"] > 0.6, r


@pytest.mark.parametrize("name", ["t5", "bart"])
def test_same_loss_and_grads_on_1_and_8_devices(tmp_path, devices, name):
  config = text_smoke_config(name, tmp_path / "corpus", tmp_path / "data", **{"model.dropout": 0.1})
  source = get_source(config.data, config.data.train_split)
  batch = {k: np.stack([source[i][k] for i in range(8)]) for k in ("ids", "segments", "positions")}
  assert_same_step_on_1_and_8_devices(lambda: make_method(config), batch, devices)


@pytest.mark.parametrize("override,message", [
    ({"model.vocab_size": 250}, "model.vocab_size: expected at least data.vocab_size + method.num_sentinels = 300"),
    ({"method.num_sentinels": 1, "model.vocab_size": 201},
     "method.num_sentinels: expected an integer >= the 2 noise spans of a 32-token row, got 1"),
    ({"data.packing": "segments"}, "data.packing: expected 'concat'"),
    ({"method.name": "bart", "method.mask_ratio": 1.5, "method.poisson_lambda": 3.0, "method.random_ratio": 0.1,
      "data.special_ids": {"pad": 0, "unk": 1, "eos": 3, "mask": 4}}, "method.mask_ratio: expected a number in (0, 1)"),
    ({"method.name": "bart", "data.special_ids": {"pad": 0, "unk": 1, "eos": 3}},
     "data.special_ids: expected a 'mask' id for BART"),
])
def test_config_errors_name_the_field(tmp_path, override, message):
  config = text_smoke_config("t5", tmp_path / "corpus", tmp_path / "data", **override)
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(config)


def test_translation_smoke_pretrain_then_probe(tmp_path, devices):
  import os
  import sys

  from helpers import ROOT, _FILLER, _NEGATIVE, _POSITIVE

  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  rng = np.random.default_rng(0)
  words = _FILLER + _POSITIVE + _NEGATIVE
  with open(tmp_path / "pairs.tsv", "w") as f:  # "translation": the words reversed, after a tag
    f.write("source\ttarget\n")
    for _ in range(200):
      s = list(rng.choice(words, int(rng.integers(3, 9))))
      f.write(f"{' '.join(s)}\tfr {' '.join(s[::-1])}\n")
  config = text_smoke_config("bert", tmp_path / "corpus", tmp_path / "data")  # its generated probe TSV
  from sslax.config import load_config

  cove = load_config(os.path.join(ROOT, "experiments", "cove_pud.py:smoke"))
  cove.unlock()
  cove.data.paths = {"train": str(tmp_path / "pairs.tsv"), "test": str(tmp_path / "pairs.tsv")}
  cove.data.data_dir = str(tmp_path / "data")
  cove.eval.probe_data.paths = dict(config.eval.probe_data.paths)
  cove.lock()
  r = train(cove, str(tmp_path / "run"), progress=False).report
  assert {"heldout/target_loss", "heldout/target_accuracy", "knn_top1", "linear_top1"} <= set(r)
  source = get_source(cove.data, cove.data.train_split)
  keys = ("ids", "segments", "positions", "target_ids", "target_segments")
  assert set(keys) <= set(source[0])
  assert_same_step_on_1_and_8_devices(lambda: make_method(cove), {k: np.stack([source[i][k] for i in range(8)])
                                                                  for k in keys}, devices)
  assert abs(r["heldout/target_loss"] - np.log(300)) < 0.5, r  # 3 steps: about uniform over 300 ids
  assert r["knn_top1"] > 0.6, r
