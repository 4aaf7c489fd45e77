"""Extractive QA: the official SQuAD v1.1 metric on a hand example, run_qa.py's windows and n-best
post-processing, and a fine-tuning through `experiments/squad_qa.py` on generated questions."""
import json
import os
import sys

import numpy as np
import pytest

from helpers import _FILLER, _NEGATIVE, _POSITIVE, ROOT, assert_same_step_on_1_and_8_devices, text_smoke_config
from sslax.data.squad import qa_windows, split_by_article
from sslax.eval.squad import best_answers, normalize_answer, squad_scores


def test_official_metric_on_a_hand_example():
  answers = {"q1": ["Denver Broncos", "The Denver Broncos"], "q2": ["Carolina Panthers"],
             "q3": ["Santa Clara, California", "Levi's Stadium"], "q4": ["February 7, 2016"]}
  predictions = {"q1": "the Denver  Broncos.", "q2": "Panthers", "q3": "Levi's Stadium in Santa Clara"}
  assert normalize_answer("The  Denver, Broncos!") == "denver broncos"
  assert normalize_answer("Levi's an apple") == "levis apple"
  # evaluate-v1.1.py by hand: q1 exact; q2 P 1, R 1/2 -> F1 2/3; q3 "levis stadium in santa clara"
  # against "levis stadium": P 2/5, R 1 -> 4/7 (against "santa clara california" 1/2, the max is kept);
  # q4 unanswered counts 0 in both
  scores = squad_scores(answers, predictions)
  assert scores["exact_match"] == pytest.approx(25.0)
  assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 4 / 7) / 4)
  with pytest.raises(ValueError, match="answers: expected at least one question"):
    squad_scores({}, {})


def _word_tokenizer(words):
  from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

  vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4} | {w: i + 5 for i, w in enumerate(words)}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
  tok.normalizer = normalizers.Lowercase()
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  return tok


def test_windows_hold_the_answer_tokens():
  rng = np.random.default_rng(0)
  words = [f"w{i}" for i in range(60)]
  tok = _word_tokenizer(words)
  examples = []
  for i in range(30):
    context = " ".join(rng.choice(words, int(rng.integers(5, 70))))
    tokens = context.split()
    s = int(rng.integers(len(tokens)))
    e = min(len(tokens), s + int(rng.integers(1, 4)))
    start = len(" ".join(tokens[:s])) + (1 if s else 0)
    text = " ".join(tokens[s:e])
    assert context[start: start + len(text)] == text
    examples.append({"id": str(i), "title": f"t{i % 3}", "context": context, "question": "W1 w2 w3",
                     "answers": {"text": [text], "answer_start": [start]}})
  ids = {"pad": 0, "cls": 2, "sep": 3}
  w = qa_windows(examples, tok, seq_len=24, doc_stride=6, max_query_len=2, special_ids=ids)
  room = 24 - 2 - 3
  for i, ex in enumerate(examples):
    rows = np.flatnonzero(w["example"] == i)
    tokens = ex["context"].split()
    assert len(rows) == max(1, -(-(len(tokens) - 6) // (room - 6)))  # windows overlap by doc_stride
    windows = []
    for r in rows:
      ids_r, off, n = w["ids"][r], w["offsets"][r], int(w["segments"][r].sum())
      assert list(ids_r[:4]) == [2, tok.token_to_id("w1"), tok.token_to_id("w2"), 3] and ids_r[n - 1] == 3
      assert (w["type_ids"][r, 4:n] == 1).all() and (w["type_ids"][r, :4] == 0).all() and (ids_r[n:] == 0).all()
      inside = np.flatnonzero(off[:, 0] >= 0)
      windows.append([ex["context"][a:b] for a, b in off[inside]])
      np.testing.assert_array_equal(ids_r[inside], [tok.token_to_id(ex["context"][a:b]) for a, b in off[inside]])
      answer = ex["answers"]["text"][0]
      s, e = w["start"][r], w["end"][r]
      if s:
        assert ex["context"][off[s, 0]: off[e, 1]] == answer
      else:  # the window does not hold the whole answer
        held = off[inside]
        a0 = ex["answers"]["answer_start"][0]
        assert not (held[0, 0] <= a0 and held[-1, 1] >= a0 + len(answer))
    # every context token is in a window, consecutive windows sharing exactly doc_stride tokens
    assert windows[0] + [t for win in windows[1:] for t in win[6:]] == tokens
    assert all(a[-6:] == b[:6] for a, b in zip(windows, windows[1:]))
  train, test = split_by_article(examples, 0.34)
  assert {e["title"] for e in train}.isdisjoint({e["title"] for e in test}) and len(train) + len(test) == 30


def test_best_answers_take_the_best_valid_span_over_windows():
  contexts = ["alpha beta gamma delta"]
  offsets = np.full((2, 6, 2), -1)
  offsets[0, 2:5] = [(0, 5), (6, 10), (11, 16)]  # window 0: alpha beta gamma
  offsets[1, 2:5] = [(6, 10), (11, 16), (17, 22)]  # window 1: beta gamma delta
  start = np.full((2, 6), -5.0)
  end = np.full((2, 6), -5.0)
  start[:, 0] = end[:, 0] = 9.0  # [CLS]: never an answer in v1.1
  start[0, 3], end[0, 2] = 3.0, 4.0  # end before start: not a candidate
  start[1, 2], end[1, 4] = 2.0, 2.5  # "beta gamma delta": 4.5
  start[1, 3], end[1, 3] = 2.2, 2.7  # "gamma": 4.9, the best valid pair ("gamma delta" 4.7)
  assert best_answers(start, end, offsets, np.array([0, 0]), contexts) == ["gamma"]
  assert best_answers(start, end, offsets, np.array([0, 0]), contexts, n_best=1) == [""]  # only [CLS] pairs
  start[1, 3] = -9.0  # now "beta gamma" (window 1: 2.0 + 2.7) against "beta gamma delta" (3 tokens)
  assert best_answers(start, end, offsets, np.array([0, 0]), contexts, max_answer_length=2) == ["beta gamma"]
  # one token: "alpha" (window 0: -5 + 4.0) beats "beta" (3.0 - 5) and window 1's (-3 at best)
  assert best_answers(start, end, offsets, np.array([0, 0]), contexts, max_answer_length=1) == ["alpha"]


def _write_squad(path, n_articles=6, per_article=40, seed=0):
  """Questions whose answer is the one positive word of a context of fillers and negative words."""
  rng = np.random.default_rng(seed)
  data = []
  for a in range(n_articles):
    paragraphs = []
    for q in range(per_article):
      words = list(rng.choice(_FILLER + _NEGATIVE, int(rng.integers(6, 40))))
      k = int(rng.integers(len(words) + 1))
      answer = str(rng.choice(_POSITIVE))
      words.insert(k, answer)
      context = " ".join(words)
      start = len(" ".join(words[:k])) + (1 if k else 0)
      paragraphs.append({"context": context, "qas": [{"id": f"{a}-{q}", "question": "which word is good",
                                                      "answers": [{"text": answer, "answer_start": start}]}]})
    data.append({"title": f"article {a}", "paragraphs": paragraphs})
  with open(path, "w") as f:
    json.dump({"data": data, "version": "1.1"}, f)
  return str(path)


def test_finetune_finds_the_answer_span(tmp_path):
  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  import squad_qa

  config = text_smoke_config("bert", tmp_path / "corpus", tmp_path / "data")
  (tmp_path / "config.json").write_text(config.to_json())
  cfg = tmp_path / "cfg.py"
  cfg.write_text("import ml_collections, json\ndef get_config(arg=None):\n"
                 f"  return ml_collections.ConfigDict(json.load(open({str(tmp_path / 'config.json')!r})))\n")
  report = squad_qa.main(["--config", str(cfg), "--random_init", "--squad", _write_squad(tmp_path / "squad.json"),
                          "--seq_len", "32", "--doc_stride", "8", "--max_query_len", "8", "--epochs", "4",
                          "--batch_size", "16", "--lr", "3e-3", "--test_fraction", "0.34",
                          "--finetune_dir", str(tmp_path / "ft"), "--output", str(tmp_path / "qa.json")])
  assert report["test_articles"] == 2 and report["train_articles"] == 4
  assert report["test_windows"] > report["test_questions"]  # long contexts are cut into several windows
  # chance: one of ~20 tokens; the answer's word is in the vocabulary and always positive
  assert report["exact_match"] > 80 and report["f1"] >= report["exact_match"], report
  assert json.load(open(tmp_path / "qa.json"))["f1"] == report["f1"]


def test_same_loss_and_grads_on_1_and_8_devices(tmp_path, devices):
  import jax
  import ml_collections

  from sslax.cli import finetune_config
  from sslax.data import get_source
  from sslax.data.tokenize import data_tokenizer
  from sslax.methods import method_class

  config = text_smoke_config("bert", tmp_path / "corpus", tmp_path / "data")
  get_source(config.data, config.data.train_split)  # trains the tokenizer
  with open(_write_squad(tmp_path / "squad.json", n_articles=1, per_article=8)) as f:
    paragraphs = json.load(f)["data"][0]["paragraphs"]
  examples = [{"id": p["qas"][0]["id"], "title": "a", "context": p["context"], "question": p["qas"][0]["question"],
               "answers": {"text": [p["qas"][0]["answers"][0]["text"]],
                           "answer_start": [p["qas"][0]["answers"][0]["answer_start"]]}} for p in paragraphs]
  windows = qa_windows(examples, data_tokenizer(config.data), seq_len=32, doc_stride=8, max_query_len=8,
                       special_ids=dict(config.data.special_ids))
  data = ml_collections.ConfigDict({**config.data.to_dict(), "seq_len": 32, "packing": "none", "pair_key": "context"})
  run_config = finetune_config(config, data, backbone="bert", task="extractive_qa", num_classes=2, batch_size=8)
  batch = {k: windows[k][:8] for k in ("ids", "segments", "positions", "type_ids", "start", "end")}
  # two steps: the head starts at zero, so only the second moves the encoder
  m1, _, g1 = assert_same_step_on_1_and_8_devices(lambda: method_class("extractive_qa")(run_config), batch, devices,
                                                  steps=2)
  assert max(float(np.abs(x).max()) for x in jax.tree.leaves(g1["backbone"])) > 0
