"""Token classification on CoNLL-2003 named entities with a pretrained `bert_text.py` encoder.

The same model, data and tokenizer as `bert_text.py` (pass the same variant), with CoNLL-2003 as
the probe data and the fine-tuning settings of BERT's NER fine-tuning (Devlin et al. 2019, sec.
5.3: a linear layer on every token, the tag on each word's first sub-word, entity F1):

  sslax train    --config experiments/bert_text.py:cpu --workdir runs/bert
  sslax finetune --config experiments/bert_conll.py:cpu --workdir runs/bert [--random_init]

TFDS `conll2003` downloads the data; offline, point it at the shared task's files:
  --set eval.probe_data.source="'text_files'" --set eval.probe_data.paths.train="'/data/conll2003/train.txt'"
  --set eval.probe_data.paths.dev="'/data/conll2003/valid.txt'"
"""
import bert_text
from text_common import conll2003_probe

VARIANTS = bert_text.VARIANTS


def get_config(arg: str | None = None):
  c = bert_text.get_config(arg)
  c.eval.probe_data = conll2003_probe()
  c.eval.probe_data.seq_len = 128
  c.finetune.label, c.finetune.group_by, c.finetune.per_group = "tags", (), 0
  # Devlin et al. fine-tune 3-4 epochs at 2e-5..5e-5, batch 32 (14,041 training sentences)
  c.finetune.steps, c.finetune.batch_size, c.finetune.warmup_steps = 1500, 32, 150
  c.finetune.lr = 5e-5 if (arg or "full") == "full" else 1e-4
  return c
