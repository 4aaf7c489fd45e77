"""BART denoising pretraining (Lewis et al. 2020) on the encoder-decoder Transformer: `t5_text.py`'s
data and network with BART's noise (sentence permutation, text infilling: 30% of the tokens in
Poisson(3) spans, each one [MASK], 10% of them a random token instead).

Variants (the `arg` of `get_config`): those of `t5_text.py` (cpu, full, smoke); rows of 64 tokens
(`cpu`; 512 in `full`), the vocabulary without sentinels.
"""
import t5_text

VARIANTS = t5_text.VARIANTS


def get_config(arg: str | None = None):
  c = t5_text.get_config(arg)
  c.unlock()
  c.method = {"name": "bart", "mask_ratio": 0.3, "poisson_lambda": 3.0, "random_ratio": 0.1,
              "permute_sentences": True}
  c.model.name, c.model.vocab_size = "bart", c.data.vocab_size
  c.data.seq_len = {"full": 512, "smoke": 32}.get(arg or "full", 64)
  c.data.special_ids = {**c.data.special_ids, "mask": 103 if (arg or "full") == "full" else 4}
  c.lock()
  return c
