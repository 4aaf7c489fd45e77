"""Language-model pretraining through the shared train step: BERT's masked LM (Devlin et al., NAACL
2019; SpanBERT's span masking, Joshi et al., TACL 2020) and GPT's next-token prediction (Radford et
al., 2018/2019).

Batches are packed token rows (`sslax.data.packing`): {"ids", "segments",
"positions": [B, L] int32}. Masking, next-sentence pairs and dropout are
drawn on device from the step's key.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sslax.augment.tokens import bert_mask, next_sentence_pairs, span_mask_tokens
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.language import causal_lm_loss, masked_lm_loss
from sslax.models.language import BERT, GPT

TOKEN_KEYS = ("ids", "segments", "positions")


def validate_token_batch(batch, *, num_devices: int, vocab_size: int, max_len: int) -> None:
  """Checks a host batch of packed rows {"ids", "segments", "positions": [B, L] int}; errors name the field."""
  for key in TOKEN_KEYS:
    if key not in batch:
      raise ValueError(f"batch: expected an {key!r} entry, got keys {sorted(batch)}")
  ids = np.asarray(batch["ids"])
  if ids.ndim != 2:
    raise ValueError(f"batch.ids: expected rank 2 [B, L], got rank {ids.ndim} shape {ids.shape}")
  for key in TOKEN_KEYS:
    x = np.asarray(batch[key])
    if x.shape != ids.shape or not np.issubdtype(x.dtype, np.integer):
      raise ValueError(f"batch.{key}: expected int {ids.shape} like batch.ids, got {x.dtype} {x.shape}")
  if ids.shape[0] == 0:
    raise ValueError("batch.ids: expected a non-empty batch, got batch size 0")
  if ids.shape[0] % num_devices:
    raise ValueError(f"batch.ids: expected a batch size divisible by the {num_devices} devices, got {ids.shape[0]}")
  if ids.shape[1] > max_len:
    raise ValueError(f"data.seq_len: expected at most model.max_len={max_len}, got rows of {ids.shape[1]} tokens")
  if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
    raise ValueError(f"batch.ids: expected token ids in [0, model.vocab_size={vocab_size}), got "
                     f"[{ids.min()}, {ids.max()}] (is the tokenizer larger than the model's vocabulary?)")


def pooled(hidden: jax.Array, valid: jax.Array) -> jax.Array:
  """Mean of hidden [B, L, D] over the valid tokens -> [B, D] float32."""
  w = valid.astype(jnp.float32)[..., None]
  return jnp.sum(hidden.astype(jnp.float32) * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)


@dataclasses.dataclass(frozen=True)
class _LanguageMethod:
  config: ml_collections.ConfigDict

  input_keys = TOKEN_KEYS

  def __post_init__(self):
    c = self.config
    check_config_value(c, "data.seq_len", lambda v: isinstance(v, int) and 4 <= v <= c.model.max_len,
                       f"an integer in [4, model.max_len={c.model.max_len}]")
    check_config_value(c, "model.dim", lambda v: isinstance(v, int) and v % c.model.num_heads == 0,
                       f"a multiple of model.num_heads={c.model.num_heads}")
    check_config_value(c, "model.vocab_size", lambda v: isinstance(v, int) and v > max(c.data.special_ids.values()),
                       f"an integer above every data.special_ids value {dict(c.data.special_ids)}")
    check_config_value(c, "eval.pooling", lambda v: v in ("mean", "cls", "last"), "'mean', 'cls' or 'last'")
    self.check_config()

  def check_config(self):
    pass

  def init_state(self, model, key) -> Any:
    return {}

  def ema_schedule(self, total_steps: int):
    return None

  def validate_batch(self, batch, num_devices: int) -> None:
    validate_token_batch(batch, num_devices=num_devices, vocab_size=self.config.model.vocab_size,
                         max_len=self.config.model.max_len)

  def _pool(self, hidden, inputs):
    valid = inputs["segments"] > 0
    pooling = self.config.eval.get("pooling", "mean")
    if pooling == "cls":
      return hidden[:, 0].astype(jnp.float32)
    if pooling == "last":  # the last real token: what a causal model has read the whole text at
      last = jnp.maximum(jnp.sum(valid, axis=1) - 1, 0)
      return jnp.take_along_axis(hidden, last[:, None, None], axis=1)[:, 0].astype(jnp.float32)
    return pooled(hidden, valid)

  def features(self, model, inputs) -> jax.Array:
    """The subclass's `token_features` [B, L, D] pooled as `eval.pooling` says: [B, D] float32."""
    return self._pool(self.token_features(model, inputs), inputs)


@dataclasses.dataclass(frozen=True)
class BertMLM(_LanguageMethod):
  """BERT masked-LM pretraining: `method.masking` "bert" (15% of tokens, 80/10/10) or "span"
  (SpanBERT), optionally with next-sentence prediction (`method.nsp`, concat-packed data only).

  Predictions are made at no more than `method.max_predictions` positions per row (gathered
  before the vocabulary projection, as the reference's `max_predictions_per_seq`).
  """

  name = "bert"

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

  def build_model(self, rngs: nnx.Rngs) -> BERT:
    """The BERT of `model.*`; with `model.hf_weights` (a local Hugging Face BERT directory) its
    weights are loaded in (dimensions checked against its config.json)."""
    m = self.config.model
    model = BERT(vocab_size=m.vocab_size, max_len=m.max_len, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
                 mlp_dim=m.mlp_dim, dropout=m.dropout, adapter_dim=m.get("adapter_dim", 0), rngs=rngs)
    if m.get("hf_weights"):
      from sslax.models.hf_bert import bert_from_hf

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
    if c.method.nsp:
      nsp_logits = model.nsp_logits(feats["pooled"]).astype(jnp.float32)
      nsp = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(nsp_logits), nsp_labels[:, None], axis=1))
      out["nsp_loss"], out["nsp_accuracy"] = nsp, jnp.mean(jnp.argmax(nsp_logits, -1) == nsp_labels)
      loss = loss + nsp
    return loss, out, pooled(hidden, valid)

  def loss(self, model: BERT, batch, method_state, key, step, target=None):
    loss, metrics, emb = self._mlm(model, batch, key, train=True)
    return loss, {**metrics, **collapse_metrics(emb)}, method_state

  def heldout(self, model: BERT, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Masked-LM loss and accuracy on held-out rows, masks drawn from `key`: {name: (sum, count)}."""
    _, m, _ = self._mlm(model, inputs, key, train=False)
    n = m["num_targets"]
    return {"mlm_loss": (m["mlm_loss"] * n, n), "mlm_accuracy": (m["mlm_accuracy"] * n, n)}

  def token_features(self, model: BERT, inputs) -> jax.Array:
    """The last layer's state of every token, [B, L, D] float32 (token classification)."""
    valid = inputs["segments"] > 0
    hidden, _ = model(inputs["ids"], valid, segments=inputs["segments"], positions=inputs["positions"])
    return hidden.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class GPTLM(_LanguageMethod):
  """GPT causal-LM pretraining: every real next token in the row is a target."""

  name = "gpt"

  def check_config(self):
    c = self.config
    check_config_value(c, "data.framing", lambda v: v == "eos", "'eos' (documents end with the end-of-text token)")
    for name in ("pad", "eos"):
      if name not in c.data.special_ids:
        raise ValueError(f"data.special_ids: expected a {name!r} id for GPT, got {dict(c.data.special_ids)}")

  def build_model(self, rngs: nnx.Rngs) -> GPT:
    m = self.config.model
    return GPT(vocab_size=m.vocab_size, max_len=m.max_len, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
               mlp_dim=m.mlp_dim, dropout=m.dropout, adapter_dim=m.get("adapter_dim", 0), rngs=rngs)

  def _lm(self, model, batch, key):
    segments = batch["segments"]
    valid = segments > 0
    logits, feats = model(batch["ids"], valid, key=key, segments=segments, positions=batch["positions"])
    loss, aux = causal_lm_loss(logits, batch["ids"], valid, segments)
    return loss, aux, feats["hidden"], valid

  def loss(self, model: GPT, batch, method_state, key, step, target=None):
    loss, aux, hidden, valid = self._lm(model, batch, key)
    metrics = {"accuracy": aux["accuracy"], "perplexity": aux["perplexity"], "num_targets": aux["num_targets"]}
    return loss, {**metrics, **collapse_metrics(pooled(hidden, valid))}, method_state

  def heldout(self, model: GPT, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Next-token loss (nats) and accuracy on held-out rows, no dropout: {name: (sum, count)}."""
    loss, aux, _, _ = self._lm(model, inputs, None)
    n = aux["num_targets"]
    return {"lm_loss": (loss * n, n), "lm_accuracy": (aux["accuracy"] * n, n)}

  def token_features(self, model: GPT, inputs) -> jax.Array:
    """The last layer's state of every token, [B, L, D] float32 (each has read only its left)."""
    _, feats = model(inputs["ids"], inputs["segments"] > 0, segments=inputs["segments"],
                     positions=inputs["positions"])
    return feats["hidden"].astype(jnp.float32)
