"""Held-out perplexity of count-based unigram and bigram models on a GPT config's token rows.

The baseline a language model's held-out perplexity must beat: the same
tokenizer, rows and targets as `sslax eval` on that config (every next token
in the same example). Bigram probabilities are add-k smoothed, k picked
among a few values on the last 10% of the training rows.

  python experiments/bigram_baseline.py --config experiments/gpt_text.py:cpu [--output bigram.json]
"""
import argparse

import numpy as np

from report_json import emit
from sslax.config import apply_overrides, load_config, validate_config
from sslax.data import get_source


def _pairs(source):
  ids = np.asarray(source.arrays["ids"])
  seg = np.asarray(source.arrays["segments"])
  keep = (seg[:, :-1] > 0) & (seg[:, :-1] == seg[:, 1:])
  return ids[:, :-1][keep], ids[:, 1:][keep]


def _nll(prev, nxt, counts, unigram, k):
  v = len(unigram)
  probs = (counts[prev, nxt] + k) / (counts[prev].sum(axis=1) + k * v)
  return float(-np.mean(np.log(probs)))


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--config", required=True)
  p.add_argument("--set", action="append", default=[])
  p.add_argument("--output")
  args = p.parse_args(argv)
  config = validate_config(apply_overrides(load_config(args.config), args.set))
  v = int(config.model.vocab_size)
  train_prev, train_next = _pairs(get_source(config.data, config.data.train_split))
  test_prev, test_next = _pairs(get_source(config.data, config.data.eval_split))
  cut = int(len(train_prev) * 0.9)

  def fit(prev, nxt):
    counts = np.zeros((v, v), np.float64)
    np.add.at(counts, (prev, nxt), 1.0)
    return counts

  ks = (1.0, 0.3, 0.1, 0.03, 0.01)
  dev_counts = fit(train_prev[:cut], train_next[:cut])
  unigram_dev = np.bincount(train_next[:cut], minlength=v) + 1.0
  k = min(ks, key=lambda k: _nll(train_prev[cut:], train_next[cut:], dev_counts, unigram_dev, k))
  counts = fit(train_prev, train_next)
  unigram = np.bincount(train_next, minlength=v) + 1.0  # add-one
  unigram_nll = float(-np.mean(np.log(unigram[test_next] / unigram.sum())))
  bigram_nll = _nll(test_prev, test_next, counts, unigram, k)
  report = {"unigram_perplexity": float(np.exp(unigram_nll)), "bigram_perplexity": float(np.exp(bigram_nll)),
            "bigram_add_k": k, "train_targets": int(len(train_next)), "test_targets": int(len(test_next))}
  emit(report, args.output)


if __name__ == "__main__":
  main()
