"""Natural language inference as sentence-pair classification with a pretrained `bert_text.py` or
`spanbert_text.py` encoder (Devlin et al. 2019, sec. 4.1): `[CLS] premise [SEP] hypothesis [SEP]`
with segment embeddings, a linear head on the mean-pooled last layer, everything fine-tuned;
accuracy on the task's held-out split (`text_common.nli_probe`).

  python experiments/nli_data.py          # SNLI's parallel files -> runs/nli/snli_{dev,test}.tsv
  sslax train    --config experiments/spanbert_text.py:cpu --workdir runs/spanbert/sbo
  sslax finetune --config experiments/bert_nli.py:cpu,snli,spanbert --workdir runs/spanbert/sbo [--random_init]

The argument is `<variant>,<task>[,<pretraining>]`: a variant of `bert_text.py` (cpu, full,
minilm, smoke), the task (snli, rte, sick) and the pretraining config the workdir was trained
with (bert, the default, or spanbert), so the network and tokenizer are those of the checkpoint.
`cpu`: rows of 64 tokens (128 for RTE, whose premises are paragraphs), batch 32, AdamW lr 1e-4 with
10% warm-up, about 2 epochs: 600 steps on SNLI, 300 on SICK, 160 on RTE.
"""
import bert_text
import spanbert_text
from text_common import NLI_TASKS, nli_probe

STEPS = {"snli": 600, "sick": 300, "rte": 160}
VARIANTS = ("cpu", "full", "smoke")  # a bare variant is SNLI on `bert_text.py`'s network


def get_config(arg: str | None = None):
  parts = (arg or "full,snli").split(",")
  if len(parts) == 1:
    parts.append("snli")
  if len(parts) not in (2, 3):
    raise ValueError(f"config arg: expected '<variant>,<task>[,<pretraining>]', got {arg!r}")
  variant, task, base = (*parts, "bert")[:3]
  if task not in NLI_TASKS:
    raise ValueError(f"config arg: expected a task in {list(NLI_TASKS)}, got {task!r}")
  if base not in ("bert", "spanbert"):
    raise ValueError(f"config arg: expected the pretraining 'bert' or 'spanbert', got {base!r}")
  c = (bert_text if base == "bert" else spanbert_text).get_config(variant)
  c.eval.probe_data = nli_probe(task)
  c.eval.probe_data.seq_len = 128 if task == "rte" or variant == "full" else min(64, c.data.seq_len)
  c.finetune.label, c.finetune.group_by, c.finetune.per_group = "label", (), 0
  c.finetune.steps, c.finetune.batch_size = STEPS[task] * (4 if variant == "full" else 1), 32
  c.finetune.warmup_steps = c.finetune.steps // 10
  c.finetune.lr = 5e-5 if variant == "full" else 1e-4
  if variant == "smoke":
    c.finetune.steps, c.finetune.warmup_steps = 20, 2
  return c
