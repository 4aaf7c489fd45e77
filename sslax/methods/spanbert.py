"""SpanBERT (Joshi et al., TACL 2020): BERT's masked LM on geometric spans plus the span boundary
objective (SBO), through the shared train step.

Each token x_i of a masked span s..e is predicted a second time from the encoder outputs of the
span's boundary tokens x_{s-1}, x_{e+1} and the embedding of its offset i - s
(`sslax.models.heads.SpanBoundaryHead`), and the two cross-entropies are summed (eq. 3):
L(x_i) = L_MLM(x_i) + `method.sbo_weight` * L_SBO(x_i). The masking is `BertMLM`'s "span";
boundaries are found on device from the masked positions (`sslax.augment.tokens.span_boundaries`).
Without SBO this is `bert` with `method.masking=span` (the ablation of the paper's Table 6).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.augment.tokens import span_boundaries
from sslax.config import check_config_value
from sslax.losses.language import masked_lm_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.bert import BertMLM
from sslax.models.language import SpanBERT


@register("spanbert")
class SpanBertMLM(BertMLM):
  """BERT + span masking + the span boundary objective; `method.sbo_offset_dim` is the offset
  embedding's width (200 for the paper's 1,024-wide models), `method.sbo_max_offsets` its rows
  (the pretraining row length: a merged span can be that long)."""
  card = MethodCard(
      family="masked prediction",
      paper="Joshi et al. 2020, [SpanBERT](https://arxiv.org/abs/1907.10529)",
      objective="masked-LM cross-entropy on geometric spans + the same tokens predicted from the span's two "
                "boundary outputs and their offset (span boundary objective)",
      loss="sslax.losses.language.masked_lm_loss",
      reference="facebookresearch/SpanBERT `pretraining/fairseq/models/pair_bert.py` "
                "(`BertPairTargetPredictionHead`, `MLPWithLayerNorm`)",
      tests=("tests/test_spanbert.py::test_smoke_pretrain_then_probe",
             "tests/test_spanbert.py::test_span_boundaries_match_a_loop_over_runs",
             "tests/test_spanbert.py::test_sbo_loss_equals_numpy"),
      results=("SpanBERT's span boundary objective (issue 32)", "random init", "span masking + SBO"))

  model_class = SpanBERT

  def check_config(self):
    super().check_config()
    c = self.config
    check_config_value(c, "method.masking", lambda v: v == "span", "'span' (SBO predicts masked spans)")
    check_config_value(c, "method.sbo_weight", lambda v: v > 0, "a positive weight on the SBO loss")
    check_config_value(c, "method.sbo_offset_dim", lambda v: isinstance(v, int) and v > 0, "a positive integer")
    check_config_value(c, "method.sbo_max_offsets", lambda v: isinstance(v, int) and v > 0,
                       "a positive integer (offsets past it share its last embedding)")

  def extra_model_kwargs(self) -> dict:
    # merged spans can be longer than method.max_span: up to an offset per pretraining row position;
    # a config field, not data.seq_len, so that fine-tuning on other row lengths builds the same network
    m = self.config.method
    return {"max_offsets": int(m.sbo_max_offsets), "offset_dim": int(m.sbo_offset_dim)}

  def extra_loss(self, model: SpanBERT, hidden, targets, weights, where):
    """SBO cross-entropy at the gathered prediction positions `where` [B, P]."""
    left, right, offset = span_boundaries(weights > 0)
    take = lambda x: jnp.take_along_axis(x, where, axis=1)
    boundary = lambda idx: jnp.take_along_axis(hidden, take(idx)[..., None], axis=1)
    logits = model.sbo_logits(boundary(left), boundary(right), take(offset))
    loss, aux = masked_lm_loss(logits, take(targets), take(weights))
    return self.config.method.sbo_weight * loss, {"sbo_loss": loss, "sbo_accuracy": aux["accuracy"]}

  def heldout(self, model: SpanBERT, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Held-out MLM and SBO loss and accuracy: {name: (sum, count)}."""
    _, m, _ = self._mlm(model, inputs, key, train=False)
    n = m["num_targets"]
    return {name: (m[name] * n, n) for name in ("mlm_loss", "mlm_accuracy", "sbo_loss", "sbo_accuracy")}
