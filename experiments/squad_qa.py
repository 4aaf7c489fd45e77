"""Extractive QA on SQuAD v1.1 dev, split by article into our own train and test questions (the
train set is not available here; XQuAD is a subset of SQuAD dev, so nothing here may be tested on
XQuAD): a pretrained sslax BERT (or the same encoder at random init) fine-tuned with start / end
heads (`sslax.methods.extractive_qa`), windows and n-best post-processing as Hugging Face
`run_qa.py`, exact match and F1 by the official v1.1 definitions (`sslax.eval.squad`).

  python experiments/squad_qa.py --config experiments/spanbert_text.py:cpu --workdir runs/spanbert/sbo \\
    --output runs/qa/pretrained.json
  python experiments/squad_qa.py --config experiments/spanbert_text.py:cpu --random_init --output runs/qa/random.json

`cpu` defaults: windows of 128 tokens (the `cpu` BERT's max_len; run_qa.py's 384 / stride 128
scaled to 128 / 48), questions cut at 32 tokens, 20% of the 48 articles held out (seed 0),
batch 32, AdamW lr 1e-4 (3e-5 in the paper's BERT-base recipe, which starts from a far better
encoder), 10% warm-up, 2 epochs of the training windows.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_json import emit  # noqa: E402

SQUAD_DEV = "../shared/data/text/squad_v1.1/dev-v1.1.json"


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", required=True, help="the pretraining run's config")
  p.add_argument("--workdir", default=None, help="the pretraining run (its latest checkpoint)")
  p.add_argument("--random_init", action="store_true", help="the same encoder at random init")
  p.add_argument("--squad", default=SQUAD_DEV)
  p.add_argument("--test_fraction", type=float, default=0.2)
  p.add_argument("--seq_len", type=int, default=128)
  p.add_argument("--doc_stride", type=int, default=48)
  p.add_argument("--max_query_len", type=int, default=32)
  p.add_argument("--epochs", type=float, default=2.0)
  p.add_argument("--batch_size", type=int, default=32)
  p.add_argument("--lr", type=float, default=1e-4)
  p.add_argument("--n_best", type=int, default=20)
  p.add_argument("--max_answer_length", type=int, default=30)
  p.add_argument("--max_questions", type=int, default=0, help="cap on training questions (0: all; tests)")
  p.add_argument("--finetune_dir", default=None)
  p.add_argument("--output", default=None)
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  report = run(args)
  if args.output:
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
  emit(report, args.output)
  return report


def run(args) -> dict:
  import tempfile

  import jax
  import ml_collections

  from sslax.cli import _restore, finetune_config
  from sslax.config import load_config
  from sslax.data.packing import PackedTokens
  from sslax.data.squad import qa_windows, read_squad_json, split_by_article
  from sslax.data.tokenize import data_tokenizer
  from sslax.eval.squad import predict_answers, squad_scores
  from sslax.methods import method_class
  from sslax.train.loop import train

  config = load_config(args.config)
  if args.seq_len > config.model.max_len:
    raise ValueError(f"--seq_len: expected at most model.max_len={config.model.max_len}, got {args.seq_len}")
  _, mesh, state, _, _ = _restore(types.SimpleNamespace(workdir=args.workdir, random_init=args.random_init, step=None),
                                  config)
  tok = data_tokenizer(config.data)
  examples = read_squad_json(args.squad)
  train_ex, test_ex = split_by_article(examples, args.test_fraction, seed=args.seed)
  if args.max_questions:
    train_ex = train_ex[:args.max_questions]
  kw = dict(tok=tok, seq_len=args.seq_len, doc_stride=args.doc_stride, max_query_len=args.max_query_len,
            special_ids=dict(config.data.special_ids))
  train_w, test_w = qa_windows(train_ex, **kw), qa_windows(test_ex, **kw)
  keys = ("ids", "segments", "positions", "type_ids", "start", "end")
  train_src, test_src = (PackedTokens({k: w[k] for k in keys}) for w in (train_w, test_w))

  n_dev = mesh.devices.size
  batch_size = max(n_dev, args.batch_size // n_dev * n_dev)
  steps = int(np.ceil(args.epochs * len(train_src) / batch_size))
  config.unlock()
  config.finetune.update({"steps": steps, "lr": args.lr, "warmup_steps": steps // 10, "batch_size": batch_size})
  data = ml_collections.ConfigDict(config.data.to_dict())
  data.update({"seq_len": args.seq_len, "packing": "none"})
  data.pair_key = "context"  # question + context rows: type ids, as sentence pairs
  config.lock()
  run_config = finetune_config(config, data, backbone=config.method.name, task="extractive_qa", num_classes=2,
                               batch_size=batch_size)
  task = method_class("extractive_qa")(run_config, pretrained=jax.device_get((state.params, state.batch_stats)))
  workdir = args.finetune_dir or tempfile.mkdtemp(prefix="sslax-qa-")
  result = train(run_config, workdir, progress=False, method=task, sources=(train_src, test_src))

  answers = predict_answers(task, result.state, mesh, test_w, [e["context"] for e in test_ex], n_best=args.n_best,
                            max_answer_length=args.max_answer_length)
  scores = squad_scores({e["id"]: e["answers"]["text"] for e in test_ex},
                        {e["id"]: a for e, a in zip(test_ex, answers)})
  held = lambda w: float(np.mean([w["start"][w["example"] == i].max() > 0 for i in np.unique(w["example"])]))
  return {**scores, "config": args.config, "init": "random" if args.random_init else f"checkpoint:{args.workdir}",
          "train_questions": len(train_ex), "test_questions": len(test_ex),
          "train_articles": len({e["title"] for e in train_ex}), "test_articles": len({e["title"] for e in test_ex}),
          "train_windows": len(train_src), "test_windows": len(test_src),
          "test_answer_in_a_window": held(test_w), "steps": steps, "batch_size": batch_size,
          "finetune_dir": workdir,
          "sample": [{"question": e["question"], "prediction": a, "answers": e["answers"]["text"]}
                     for e, a in list(zip(test_ex, answers))[:5]]}


if __name__ == "__main__":
  main()
