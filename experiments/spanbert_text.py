"""SpanBERT (Joshi et al., TACL 2020): `bert_text.py`'s recipes with geometric span masking
(p = 0.2, at most 10 tokens, 15% of the tokens) and the span boundary objective.

Variants (the `arg` of `get_config`): those of `bert_text.py` (cpu, full, minilm, smoke), with
method.name "spanbert", method.masking "span", no next-sentence prediction (SpanBERT drops it)
and an offset embedding of 64 (200 in `full`, the paper's width for 1,024-wide models).
The ablation without SBO is `bert_text.py:<variant> --set method.masking=span`.
"""
from bert_text import VARIANTS
from bert_text import get_config as bert_config


def get_config(arg: str | None = None):
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = bert_config(arg)
  c.unlock()
  c.method.update({"name": "spanbert", "masking": "span", "nsp": False, "sbo_weight": 1.0,
                   "sbo_offset_dim": {"full": 200, "smoke": 8}.get(arg, 64), "sbo_max_offsets": c.data.seq_len})
  c.lock()
  return c
