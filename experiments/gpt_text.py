"""GPT next-token pretraining (Radford et al. 2018/2019).

Variants (the `arg` of `get_config`):
  smoke  a 1-layer GPT of width 32 on a generated text file (the tests), 3 steps.
  cpu    tinyshakespeare on 2 CPU cores: byte-level BPE of 2,048 tokens trained
         on the first 90% of the text, the last 10% held out; rows of 128
         tokens cut from the continuous text; a 4-layer GPT of width 192,
         batch 32, 1,000 steps. Reports held-out perplexity (compare with
         `experiments/bigram_baseline.py`).
  full   GPT-2 small (Radford et al. 2019): 12 layers of 768, 12 heads, 1,024
         tokens, a 50,257-token byte-level BPE (pass GPT-2's tokenizer.json as
         data.tokenizer, with special_ids eos=50256, pad=50256), AdamW (0.9,
         0.95) lr 6e-4, 2,000 warm-up steps, cosine decay over 600k steps, batch
         512 x 1,024 tokens, weight decay 0.1 (nanoGPT's reproduction), on TFDS
         `wikipedia/20230601.en` (WebText is not in TFDS).
"""
from text_common import BPE_IDS, SHAKESPEARE, sst2_probe, text_config

VARIANTS = ("cpu", "full", "smoke")


def get_config(arg: str | None = None):
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  method = {"name": "gpt"}
  data = {"paths": {"train": SHAKESPEARE, "test": SHAKESPEARE},
          "split_range": {"train": (0.0, 0.9), "test": (0.9, 1.0)}, "tokenizer": "bpe", "vocab_size": 2048,
          "seq_len": 128, "packing": "concat", "framing": "eos", "special_ids": dict(BPE_IDS)}
  if arg == "full":
    c = text_config(method, {"name": "gpt", "vocab_size": 50304, "max_len": 1024, "dim": 768, "depth": 12,
                             "num_heads": 12, "mlp_dim": 3072, "dropout": 0.0}, data)
    c.data.source, c.data.name, c.data.paths, c.data.split_range = "tfds", "wikipedia/20230601.en", {}, {}
    c.data.train_split, c.data.eval_split = "train[:99%]", "train[99%:]"
    c.data.tokenizer, c.data.seq_len, c.data.special_ids = "gpt2/tokenizer.json", 1024, {"eos": 50256, "pad": 50256}
    c.data.vocab_size = 50257
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 512, 600_000, 100, 5000
    c.optim.lr, c.optim.warmup_steps, c.optim.b2, c.optim.weight_decay = 6e-4, 2000, 0.95, 0.1
    c.optim.final_lr_fraction = 0.1
  elif arg == "cpu":
    c = text_config(method, {"name": "gpt", "vocab_size": 2048, "max_len": 128, "dim": 192, "depth": 4,
                             "num_heads": 6, "mlp_dim": 768, "dropout": 0.2}, data)
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 32, 1000, 50, 500
    c.train.knn_every = 250  # held-out perplexity along the way
    c.optim.lr, c.optim.warmup_steps, c.optim.b2, c.optim.weight_decay = 1e-3, 100, 0.99, 0.1
    c.optim.final_lr_fraction = 0.1
  else:
    c = text_config(method, {"name": "gpt", "vocab_size": 300, "max_len": 32, "dim": 32, "depth": 1,
                             "num_heads": 2, "mlp_dim": 64, "dropout": 0.0}, {**data, "vocab_size": 300,
                                                                               "seq_len": 32})
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 8, 3, 1, 3
    c.optim.lr, c.optim.warmup_steps = 1e-3, 1
  c.eval.pooling = "last"
  c.model.gelu = "exact"  # 'tanh': GPT-2's own GELU, for OpenAI's weights (`model.init_from`)
  # `sslax fewshot`: SST-2 dev by in-context log-likelihood of " negative" / " positive"
  c.eval.fewshot = {"data": sst2_probe(), "choices": ("negative", "positive"),
                    "template": "Review: {text}\nSentiment:", "max_test": 0}
  return c
