"""A cross-lingual masked LM: BERT on English, French and German text with one byte-level
vocabulary (every UTF-8 byte a token, `data.tokenizer='bytes'`), fine-tuned for UPOS tagging on
English EWT only and tested zero-shot on French and German (`experiments/crosslingual_pos.py`),
against the same network fine-tuned from random init.

  python experiments/multilingual_corpus.py                               # runs/xling/corpus.tsv
  sslax train --config experiments/xling_text.py:cpu --workdir runs/xling/mlm
  sslax finetune --config experiments/xling_text.py:cpu --workdir runs/xling/mlm --finetune_dir runs/xling/pos
  sslax finetune --config experiments/xling_text.py:cpu --random_init --finetune_dir runs/xling/pos_random
  python experiments/crosslingual_pos.py runs/xling/pos runs/xling/pos_random

Variants (the `arg` of `get_config`):
  cpu    the corpus's 15,299 rows (12,544 English sentences, 1,476 French and 799 German ones, 480
         XQuAD paragraphs), packed whole into rows of 128 bytes (longer ones cut to their first 126), 2%
         held out; `bert_text.py:cpu`'s network and optimizer (4 layers of 192, batch 64, 2,000
         steps, lr 1e-3), span masking off (BERT's 15%). POS fine-tuning: EWT train, rows of 256
         bytes, 600 steps of 32 sentences, as `bert_ud.py:cpu`.
  full   `bert_ud.py:full`'s BERT-base on the same corpus, rows of 512 bytes.
  smoke  a 1-layer BERT of width 32 (the tests), 3 steps.
"""
import bert_ud
from text_common import ud_probe

VARIANTS = ("cpu", "full", "smoke")
CORPUS = "runs/xling/corpus.tsv"
BYTES = 261  # sslax.data.tokenize.BYTES_VOCAB_SIZE: 5 specials + 256 bytes


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = bert_ud.get_config(arg)
  c.unlock()
  c.data.paths = {"train": CORPUS, "test": CORPUS}
  c.data.text_column, c.data.label_column = "text", ""
  c.data.tokenizer, c.data.vocab_size = "bytes", BYTES
  c.model.vocab_size = BYTES
  c.data.seq_len = {"cpu": 128, "full": 512}.get(arg, 32)
  c.model.max_len = {"cpu": 256, "full": 512}.get(arg, 64)
  c.eval.probe_data = ud_probe()
  c.eval.probe_data.seq_len = {"cpu": 256, "full": 512}.get(arg, 64)
  c.data.packing, c.method.nsp = "segments", False  # whole sentences of three languages, no NSP
  c.lock()
  return c
