"""Supervised translation on the encoder-decoder Transformer, for CoVe (McCann et al., NeurIPS 2017:
"Learned in Translation: Contextualized Word Vectors"): the encoder of a translation model as a
source of context vectors, the classic contrast to self-supervision, since it needs paired text.

Rows are text pairs laid out as source and target (`data.packing='seq2seq'`); the target starts
with a language tag (e.g. "fr" / "de" for a many-target model, `experiments/cove_pud.py`) that
the decoder reads but is not asked to predict. Teacher-forced cross-entropy over the other target
tokens; the decoder starts from `pad`. Features for probes: the encoder's states, as `t5`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.config import check_config_value
from sslax.data.modality import TokenRows
from sslax.eval.collapse import collapse_metrics
from sslax.losses.language import masked_lm_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.t5 import T5SpanCorruption, shift_right
from sslax.models.pooling import masked_mean


@register("translation")
class Translation(T5SpanCorruption):
  card = MethodCard(
      family="transfer",
      paper="McCann et al. 2017, [CoVe](https://arxiv.org/abs/1708.00107)",
      objective="teacher-forced cross-entropy of the target sentence given the source (supervised: pairs)",
      loss="sslax.losses.language.masked_lm_loss",
      reference="salesforce/cove (an LSTM encoder there; the Transformer encoder-decoder here)",
      tests=("tests/test_seq2seq_methods.py::test_translation_smoke_pretrain_then_probe",
             "tests/test_seq2seq.py::test_cached_decoding_equals_teacher_forcing_and_targets_are_causal"))

  @property
  def probe_inputs(self) -> TokenRows:
    """The probes read single sentences (no target rows)."""
    m, probe = self.config.model, self.probe_data()
    seq_len = int(probe.seq_len) if probe is not None else int(self.config.data.seq_len)
    return TokenRows(seq_len=seq_len, vocab_size=int(m.vocab_size), max_len=int(m.max_len))

  def check_config(self):
    c = self.config
    check_config_value(c, "data.packing", lambda v: v == "seq2seq", "'seq2seq' (source and target rows)")
    for name in ("pad", "eos"):
      if name not in c.data.special_ids:
        raise ValueError(f"data.special_ids: expected a {name!r} id for translation, got {dict(c.data.special_ids)}")

  def _seq2seq(self, model, batch, key, train: bool):
    pad = self.config.data.special_ids["pad"]
    valid, targets = batch["segments"] > 0, batch["target_ids"]
    target_valid = batch["target_segments"] > 0
    logits, aux = model(batch["ids"], valid, shift_right(targets, pad), target_valid, key=key if train else None)
    weights = target_valid.at[:, 0].set(False)  # the language tag is read, not predicted
    loss, out = masked_lm_loss(logits, targets, weights.astype(jnp.float32))
    return loss, out, aux["encoder"]

  def loss(self, model, batch, method_state, key, step, target=None):
    loss, aux, memory = self._seq2seq(model, batch, key, train=True)
    pooled = masked_mean(memory, batch["segments"] > 0)
    return loss, {"accuracy": aux["accuracy"], "num_targets": aux["num_targets"], **collapse_metrics(pooled)}, \
        method_state

  def heldout(self, model, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    loss, aux, _ = self._seq2seq(model, inputs, key, train=False)
    n = aux["num_targets"]
    return {"target_loss": (loss * n, n), "target_accuracy": (aux["accuracy"] * n, n)}
