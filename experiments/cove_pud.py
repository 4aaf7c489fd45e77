"""CoVe (McCann et al. 2017) on the parallel UD treebanks: an encoder-decoder trained to translate
the 1,000 English PUD sentences into French and German (2,000 pairs; the target starts with the
language tag "fr" / "de"), its encoder's mean-pooled states probed on SST-2 as the self-supervised
text encoders are. The point of the contrast: translation needs paired text (here 2,000 pairs,
all there is), self-supervision does not.

  python experiments/cove_pud.py                       # writes runs/cove/pud_pairs.tsv
  sslax train --config experiments/cove_pud.py:cpu --workdir runs/cove/pud
  sslax eval --config experiments/cove_pud.py:cpu --random_init

Variants (the `arg` of `get_config`):
  cpu    a byte-level BPE of 4,096 trained on the pairs' two sides, rows of 96 tokens, a 4-layer
         encoder and a 2-layer decoder of width 192 (the T5 / BART `cpu` network), batch 32,
         1,000 steps (16 epochs of the pairs), AdamW lr 1e-3, 100 warm-up steps; the last 5% of
         the pairs held out (target loss and accuracy).
  full   the Transformer-base shape (6 + 6 layers of 512, 8 heads, 2,048 MLP), rows of 128, batch 64,
         20,000 steps, lr 5e-4: for real parallel text passed as data.paths (WMT has 4.5M pairs).
  smoke  one layer each of width 32 on a generated pair file (the tests), 3 steps.
"""
import os
import sys

from text_common import BPE_IDS, TEXT, sst2_probe, text_config

VARIANTS = ("cpu", "full", "smoke")
PAIRS = "runs/cove/pud_pairs.tsv"
PUD = f"{TEXT}/ud_multilingual/UD_{{lang}}-PUD/{{code}}_pud-ud-test.conllu"


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  method = {"name": "translation"}
  data = {"paths": {"train": PAIRS, "test": PAIRS}, "split_range": {"train": (0.0, 0.95), "test": (0.95, 1.0)},
          "text_format": "tsv", "text_column": "source", "pair_column": "target", "label_column": "",
          "tokenizer": "bpe", "vocab_size": 4096, "seq_len": 96, "packing": "seq2seq", "framing": "eos",
          "special_ids": dict(BPE_IDS)}
  model = {"name": "translation", "vocab_size": 4096, "max_len": 96, "dim": 192, "depth": 4, "decoder_depth": 2,
           "num_heads": 6, "mlp_dim": 768, "pre_norm": False}
  if arg == "full":
    c = text_config(method, {**model, "max_len": 128, "dim": 512, "depth": 6, "decoder_depth": 6, "num_heads": 8,
                             "mlp_dim": 2048}, {**data, "seq_len": 128})
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 64, 20_000, 100, 2000
    c.optim.lr, c.optim.warmup_steps = 5e-4, 2000
  elif arg == "cpu":
    c = text_config(method, model, data)
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 32, 1000, 50, 500
    c.optim.lr, c.optim.warmup_steps = 1e-3, 100
    c.eval.max_train, c.eval.knn_k = 20_000, 20
  else:
    c = text_config(method, {**model, "vocab_size": 300, "max_len": 32, "dim": 32, "depth": 1, "decoder_depth": 1,
                             "num_heads": 2, "mlp_dim": 64, "dropout": 0.0}, {**data, "vocab_size": 300, "seq_len": 32})
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 8, 3, 1, 3
    c.optim.lr, c.optim.warmup_steps = 1e-3, 1
    c.eval.knn_k, c.eval.batch_size = 5, 64
  c.eval.probe_data = sst2_probe()
  c.eval.probe_data.seq_len = c.data.seq_len
  return c


def _sentences(path):
  """{sent_id: text} of a CoNLL-U file."""
  out, sid = {}, None
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.startswith("# sent_id = "):
        sid = line.split("=", 1)[1].strip()
      elif line.startswith("# text = ") and sid is not None:
        out[sid] = line.split("=", 1)[1].strip()
  return out


def main():
  en = _sentences(PUD.format(lang="English", code="en"))
  rows = []
  for lang, code in (("French", "fr"), ("German", "de")):
    other = _sentences(PUD.format(lang=lang, code=code))
    rows += [(en[s], f"{code} {other[s]}") for s in sorted(en) if s in other]
  # interleave the two languages so that the held-out 5% holds both
  rows = [r for pair in zip(rows[:len(rows) // 2], rows[len(rows) // 2:]) for r in pair]
  os.makedirs(os.path.dirname(PAIRS), exist_ok=True)
  with open(PAIRS, "w", encoding="utf-8") as f:
    f.write("source\ttarget\n")
    for a, b in rows:
      if "\t" in a + b:
        raise ValueError(f"a tab inside a PUD sentence: {a!r}")
      f.write(f"{a}\t{b}\n")
  print(f"{PAIRS}: {len(rows)} pairs")


if __name__ == "__main__":
  sys.exit(main())
