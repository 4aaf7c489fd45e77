"""BART's denoising pretraining (Lewis et al., ACL 2020) on the encoder-decoder Transformer, through
the shared train step: the sentences of each row shuffled, then text infilling (30% of the tokens
in Poisson(3) spans, each span one [MASK]), the decoder reconstructing the original row
(`sslax.augment.denoising`, fairseq's `denoising` task with `--mask 0.3 --mask-length span-poisson
--poisson-lambda 3 --replace-length 1 --permute-sentences 1`). Noise is drawn on device from the
step's key; the decoder starts from `eos` (fairseq's BART). Only the noise differs from
`sslax.methods.t5`, whose network, loss and features this reuses.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.augment.denoising import permute_sentences, text_infilling
from sslax.config import check_config_value
from sslax.methods.base import MethodCard, register
from sslax.methods.t5 import T5SpanCorruption


@register("bart")
class BARTDenoising(T5SpanCorruption):
  card = MethodCard(
      family="autoregressive",
      paper="Lewis et al. 2020, [BART](https://arxiv.org/abs/1910.13461)",
      objective="decoder cross-entropy of the original row given it with its sentences permuted and 30% of its "
                "tokens in Poisson(3) spans each replaced by one [MASK]",
      loss="sslax.losses.language.masked_lm_loss",
      reference="fairseq `fairseq/data/denoising_dataset.py` (`add_whole_word_mask`, `permute_sentences`)",
      tests=("tests/test_seq2seq_methods.py::test_bart_smoke_pretrain_then_probe",
             "tests/test_denoising.py::test_text_infilling_matches_fairseq_statistics",
             "tests/test_denoising.py::test_permute_sentences_keeps_each_sentence_whole"))

  def check_config(self):
    c = self.config
    check_config_value(c, "data.framing", lambda v: v == "eos", "'eos' (sentences end with it: they are permuted)")
    for name in ("pad", "eos", "mask"):
      if name not in c.data.special_ids:
        raise ValueError(f"data.special_ids: expected a {name!r} id for BART, got {dict(c.data.special_ids)}")
    check_config_value(c, "method.mask_ratio", lambda v: 0 < v < 1, "a number in (0, 1)")
    check_config_value(c, "method.poisson_lambda", lambda v: v > 0, "a positive number")
    check_config_value(c, "method.random_ratio", lambda v: 0 <= v <= 1, "a number in [0, 1]")

  def corrupt(self, key, ids, valid):
    c, s = self.config, self.config.data.special_ids
    k_perm, k_mask = jax.random.split(key)
    shuffled = permute_sentences(k_perm, ids, valid, eos_id=s["eos"]) if c.method.permute_sentences else ids
    specials = jnp.asarray(sorted(set(s.values())))
    maskable = jnp.ones((c.model.vocab_size,), bool).at[specials].set(False)
    inputs, input_valid, _ = text_infilling(
        k_mask, shuffled, valid, valid & ~jnp.isin(shuffled, specials), mask_id=s["mask"],
        vocab_size=int(c.model.vocab_size), pad_id=s["pad"], mask_ratio=c.method.mask_ratio,
        poisson_lambda=c.method.poisson_lambda, random_ratio=c.method.random_ratio, maskable_vocab=maskable)
    return inputs, input_valid, ids, valid, s["eos"]
