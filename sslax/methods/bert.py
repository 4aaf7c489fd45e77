"""BERT masked-LM pretraining (Devlin et al., NAACL 2019), with SpanBERT's span masking (Joshi et
al., TACL 2020) and next-sentence prediction, through the shared train step.

Batches are packed token rows (`sslax.data.packing`, `sslax.methods.language`);
masks, next-sentence pairs and dropout are drawn on device from the step's key.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.tokens import bert_mask, next_sentence_pairs, span_mask_tokens
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.language import masked_lm_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.language import TokenMethod
from sslax.models.language import BERT, attention_kwargs
from sslax.models.pooling import masked_mean


@register("bert")
class BertMLM(TokenMethod):
  """BERT masked-LM pretraining: `method.masking` "bert" (15% of tokens, 80/10/10) or "span"
  (SpanBERT), optionally with next-sentence prediction (`method.nsp`, concat-packed data only).

  Predictions are made at no more than `method.max_predictions` positions per row (gathered
  before the vocabulary projection, as the reference's `max_predictions_per_seq`).
  """
  card = MethodCard(
      family="masked prediction",
      paper="Devlin et al. 2019, [BERT](https://arxiv.org/abs/1810.04805); Joshi et al. 2020, "
            "[SpanBERT](https://arxiv.org/abs/1907.10529)",
      objective="cross-entropy on the masked positions (15%: 80% [MASK], 10% random, 10% kept), "
                "optionally + next-sentence prediction",
      loss="sslax.losses.language.masked_lm_loss",
      reference="google-research/bert `run_pretraining.py`; Hugging Face `BertForPreTraining` (hidden "
                "states compared in the parity test)",
      tests=("tests/test_language_methods.py::test_bert_smoke_pretrain_heldout_and_sst2_style_probe",
             "tests/test_language.py::test_bert_masking_proportions_over_many_draws",
             "tests/test_language.py::test_lm_losses_match_numpy",
             "tests/test_hf_bert.py::test_hidden_states_and_pooler_equal_transformers_bert"),
      results=("Language: GPT on tinyshakespeare", "random init", "MLM-pretrained"))

  def check_config(self):
    c = self.config
    check_config_value(c, "method.masking", lambda v: v in ("bert", "span"), "'bert' or 'span'")
    check_config_value(c, "method.select_prob", lambda v: 0 < v < 1, "a number in (0, 1)")
    check_config_value(c, "method.mask_frac", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    check_config_value(c, "method.random_frac", lambda v: 0 <= v <= 1 - c.method.mask_frac,
                       f"a number in [0, 1 - method.mask_frac = {1 - c.method.mask_frac}]")
    check_config_value(c, "data.framing", lambda v: v == "cls_sep", "'cls_sep' ([CLS] text [SEP] rows)")
    for name in ("pad", "cls", "sep", "mask"):
      if name not in c.data.special_ids:
        raise ValueError(f"data.special_ids: expected a {name!r} id for BERT, got {dict(c.data.special_ids)}")
    if c.method.nsp:
      check_config_value(c, "data.packing", lambda v: v == "concat",
                         "'concat' (next-sentence pairs are cut from contiguous text)")

  @property
  def max_predictions(self) -> int:
    c = self.config
    return int(c.method.get("max_predictions") or math.ceil(1.5 * c.method.select_prob * c.data.seq_len))

  model_class = BERT
  takes_pairs = True

  def extra_model_kwargs(self) -> dict:
    """Constructor arguments of `model_class` beyond BERT's (a subclass's head)."""
    return {}

  def extra_loss(self, model, hidden, targets, weights, where):
    """A further objective on the masked positions, added to the MLM loss: (loss, metrics).

    hidden [B, L, D] final states, targets / weights [B, L] as `corrupt` returns them, where
    [B, P] the gathered prediction positions. BERT has none (SpanBERT's boundary objective)."""
    return 0.0, {}

  def build_model(self, rngs: nnx.Rngs) -> BERT:
    """The BERT of `model.*`; with `model.hf_weights` (a local Hugging Face BERT directory) its
    weights are loaded in (dimensions checked against its config.json)."""
    m = self.config.model
    model = self.model_class(vocab_size=m.vocab_size, max_len=m.max_len, dim=m.dim, depth=m.depth,
                             num_heads=m.num_heads, mlp_dim=m.mlp_dim, dropout=m.dropout,
                             adapter_dim=m.get("adapter_dim", 0), **attention_kwargs(m), rngs=rngs,
                             **self.extra_model_kwargs())
    if m.get("hf_weights"):
      from sslax.weights.bert import bert_from_hf

      bert_from_hf(m.hf_weights, model=model)
    return model

  def corrupt(self, key, ids, valid):
    """(inputs, targets, weights) of BERT's / SpanBERT's masking over the non-special tokens."""
    c, s = self.config, self.config.data.special_ids
    specials = jnp.asarray(sorted(set(s.values())))
    candidates = valid & ~jnp.isin(ids, specials)
    maskable = jnp.ones((c.model.vocab_size,), bool).at[specials].set(False)
    kw = dict(vocab_size=c.model.vocab_size, mask_id=s["mask"], select_prob=c.method.select_prob,
              mask_frac=c.method.mask_frac, random_frac=c.method.random_frac, maskable_vocab=maskable)
    if c.method.masking == "span":
      return span_mask_tokens(key, ids, candidates, geometric_p=c.method.span_p, max_span=c.method.max_span, **kw)
    return bert_mask(key, ids, candidates, **kw)

  def _mlm(self, model, batch, key, train: bool):
    c, s = self.config, self.config.data.special_ids
    k_nsp, k_mask, k_drop = jax.random.split(key, 3)
    ids, segments, positions = batch["ids"], batch["segments"], batch["positions"]
    valid = segments > 0
    type_ids, nsp_labels = None, None
    if c.method.nsp:
      ids, type_ids, valid, nsp_labels = next_sentence_pairs(k_nsp, ids, valid, cls_id=s["cls"], sep_id=s["sep"],
                                                             pad_id=s["pad"])
      segments, positions = valid.astype(jnp.int32), None
    inputs, targets, weights = self.corrupt(k_mask, ids, valid)
    hidden, feats = model(inputs, valid, type_ids, key=k_drop if train else None, segments=segments,
                          positions=positions)
    # the selected positions first (top_k keeps the lower index among ties), at most max_predictions
    _, where = jax.lax.top_k(weights, self.max_predictions)
    take = lambda x: jnp.take_along_axis(x, where if x.ndim == 2 else where[..., None], axis=1)
    logits = model.mlm_logits(take(hidden))
    loss, aux = masked_lm_loss(logits, take(targets), take(weights))
    out = {"mlm_loss": loss, "mlm_accuracy": aux["accuracy"], "num_targets": aux["num_targets"],
           "selected_fraction": jnp.sum(weights) / jnp.maximum(jnp.sum(valid), 1)}
    extra, extra_metrics = self.extra_loss(model, hidden, targets, weights, where)
    loss, out = loss + extra, {**out, **extra_metrics}
    if c.method.nsp:
      nsp_logits = model.nsp_logits(feats["pooled"]).astype(jnp.float32)
      nsp = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(nsp_logits), nsp_labels[:, None], axis=1))
      out["nsp_loss"], out["nsp_accuracy"] = nsp, jnp.mean(jnp.argmax(nsp_logits, -1) == nsp_labels)
      loss = loss + nsp
    return loss, out, masked_mean(hidden, valid)

  def loss(self, model: BERT, batch, method_state, key, step, target=None):
    loss, metrics, emb = self._mlm(model, batch, key, train=True)
    return loss, {**metrics, **collapse_metrics(emb)}, method_state

  def heldout(self, model: BERT, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Masked-LM loss and accuracy on held-out rows, masks drawn from `key`: {name: (sum, count)}."""
    _, m, _ = self._mlm(model, inputs, key, train=False)
    n = m["num_targets"]
    return {"mlm_loss": (m["mlm_loss"] * n, n), "mlm_accuracy": (m["mlm_accuracy"] * n, n)}

  def token_features(self, model: BERT, inputs, key=None) -> jax.Array:
    """The last layer's state of every token, [B, L, D] float32 (token classification); sentence
    pairs' "type_ids" select the segment embeddings; with `key`, dropout drawn from it (training mode)."""
    valid = inputs["segments"] > 0
    hidden, _ = model(inputs["ids"], valid, inputs.get("type_ids"), key=key, segments=inputs["segments"],
                      positions=inputs["positions"])
    return hidden.astype(jnp.float32)
