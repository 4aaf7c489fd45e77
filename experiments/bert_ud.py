"""Part-of-speech tagging on Universal Dependencies English EWT with a pretrained `bert_text.py`
encoder: the 17 UPOS tags, a linear layer on every token, the tag on each word's first sub-word
(Devlin et al. 2019, sec. 5.3, as for NER), token accuracy on the 2,001 dev sentences.

  sslax train    --config experiments/bert_text.py:cpu --workdir runs/bert
  sslax finetune --config experiments/bert_ud.py:cpu --workdir runs/bert [--random_init]

The same model, data and tokenizer as `bert_text.py` (pass the same variant); the treebank is read
from `../shared/data/text/ud_en_ewt` (CoNLL-U, `data.text_format='conllu'`).
"""
import bert_text
from text_common import ud_probe

VARIANTS = bert_text.VARIANTS


def get_config(arg: str | None = None):
  c = bert_text.get_config(arg)
  c.eval.probe_data = ud_probe()
  c.eval.probe_data.seq_len = 128 if (arg or "full") != "full" else 256
  c.finetune.label, c.finetune.group_by, c.finetune.per_group = "tags", (), 0
  # 12,544 training sentences; about 3 epochs at batch 32 on the `full` recipe
  c.finetune.steps, c.finetune.batch_size, c.finetune.warmup_steps = 1200, 32, 120
  c.finetune.lr = 5e-5 if (arg or "full") == "full" else 1e-4
  if arg == "cpu":  # 2 cores: 600 steps of 32 sentences (1.5 epochs)
    c.finetune.steps, c.finetune.warmup_steps = 600, 60
  return c
