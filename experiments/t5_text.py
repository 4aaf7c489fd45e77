"""T5 span-corruption pretraining (Raffel et al. 2020) on the encoder-decoder Transformer.

Variants (the `arg` of `get_config`):
  smoke  one encoder and one decoder layer of width 32 on a generated TSV file (the tests), 3 steps.
  cpu    the SST-2 training sentences as `bert_text.py:cpu` (the same 4,096-piece WordPiece, labels
         unused), concatenated and cut into rows of 70 tokens, which corrupt into inputs of exactly
         64 (`t5_lengths(64)`: 10 noise tokens in 3 spans, targets of 14); a 4-layer encoder and a
         2-layer decoder of width 192, batch 64, AdamW lr 1e-3, 200 warm-up steps, cosine decay.
         Probes: the encoder's mean-pooled states, SST-2 train -> dev, as BERT's.
  full   T5-base's shape (12 + 12 layers of 768, 12 heads, 3,072 MLP), inputs of 512 (568 raw
         tokens, 114 targets), the uncased BERT vocabulary + 100 sentinels, on TFDS
         `wikipedia/20230601.en` (C4 is not in the shared data), AdamW lr 1e-4, batch 256.
"""
from text_common import SST2_TRAIN, sst2_probe, text_config

VARIANTS = ("cpu", "full", "smoke")
IDS = {"pad": 0, "unk": 1, "eos": 3}  # our WordPiece: [SEP] ends each row's text


def get_config(arg: str | None = None):
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  method = {"name": "t5", "noise_density": 0.15, "mean_noise_span_length": 3.0, "num_sentinels": 100}
  data = {"paths": {"train": SST2_TRAIN, "test": SST2_TRAIN}, "split_range": {"train": (0.0, 0.98),
                                                                               "test": (0.98, 1.0)},
          "text_format": "tsv", "tokenizer": "wordpiece", "vocab_size": 4096, "seq_len": 70,
          "packing": "concat", "framing": "eos", "special_ids": dict(IDS)}
  model = {"name": "t5", "vocab_size": 4096 + 100, "max_len": 128, "dim": 192, "depth": 4, "decoder_depth": 2,
           "num_heads": 6, "mlp_dim": 768, "pre_norm": False}
  if arg == "full":
    c = text_config(method, {**model, "vocab_size": 30522 + 100, "max_len": 568, "dim": 768, "depth": 12,
                             "decoder_depth": 12, "num_heads": 12, "mlp_dim": 3072}, data)
    c.data.source, c.data.name, c.data.paths, c.data.split_range = "tfds", "wikipedia/20230601.en", {}, {}
    c.data.train_split, c.data.eval_split, c.data.seq_len = "train[:99%]", "train[99%:]", 568
    c.data.tokenizer, c.data.vocab_size = "bert-base-uncased/vocab.txt", 30522
    c.data.special_ids = {"pad": 0, "unk": 100, "eos": 102}
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 256, 1_000_000, 100, 10_000
    c.optim.lr, c.optim.warmup_steps = 1e-4, 10_000
  elif arg == "cpu":
    c = text_config(method, model, data)
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 64, 2000, 50, 500
    c.optim.lr, c.optim.warmup_steps = 1e-3, 200
    c.eval.max_train, c.eval.knn_k = 20_000, 20
    c.train.knn_every, c.eval.monitor_max_train = 500, 5000
  else:
    c = text_config(method, {**model, "vocab_size": 200 + 100, "max_len": 32, "dim": 32, "depth": 1,
                             "decoder_depth": 1, "num_heads": 2, "mlp_dim": 64, "dropout": 0.0},
                    {**data, "vocab_size": 200, "seq_len": 32})
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 8, 3, 1, 3
    c.optim.lr, c.optim.warmup_steps = 1e-3, 1
    c.eval.knn_k, c.eval.batch_size = 5, 64
  c.eval.probe_data = sst2_probe()
  # probe sentences framed as the pretraining rows: text then [SEP]
  c.eval.probe_data.seq_len = {"full": 128, "smoke": 32}.get(arg, 64)
  return c
