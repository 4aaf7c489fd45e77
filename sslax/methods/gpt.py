"""GPT causal-LM pretraining (Radford et al., 2018/2019) through the shared train step: every real
next token of a packed row is a target; dropout is drawn from the step's key."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.language import causal_lm_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.language import TokenMethod
from sslax.models.language import GPT, attention_kwargs
from sslax.models.pooling import masked_mean


@register("gpt")
class GPTLM(TokenMethod):
  """GPT causal-LM pretraining: every real next token in the row is a target."""
  card = MethodCard(
      family="autoregressive",
      paper="Radford et al. 2018, [Improving Language Understanding by Generative Pre-Training]"
            "(https://openai.com/research/language-unsupervised)",
      objective="mean next-token cross-entropy over every real next token of the row (causal attention)",
      loss="sslax.losses.language.causal_lm_loss",
      reference="openai/gpt-2 `model.py`; karpathy/nanoGPT",
      tests=("tests/test_language_methods.py::test_gpt_smoke_pretrain_perplexity_and_generate_cli",
             "tests/test_language.py::test_lm_losses_match_numpy",
             "tests/test_language.py::test_kv_cache_generation_equals_generation_without_cache"),
      results=("Language: GPT on tinyshakespeare", "unigram", "bigram", "GPT"))

  monitor_heldout = True  # pretrained on unlabelled text: perplexity is what there is to monitor

  def check_config(self):
    c = self.config
    check_config_value(c, "data.framing", lambda v: v == "eos", "'eos' (documents end with the end-of-text token)")
    for name in ("pad", "eos"):
      if name not in c.data.special_ids:
        raise ValueError(f"data.special_ids: expected a {name!r} id for GPT, got {dict(c.data.special_ids)}")

  def build_model(self, rngs: nnx.Rngs) -> GPT:
    m = self.config.model
    return GPT(vocab_size=m.vocab_size, max_len=m.max_len, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
               mlp_dim=m.mlp_dim, dropout=m.dropout, adapter_dim=m.get("adapter_dim", 0),
               gelu=m.get("gelu", "exact"), **attention_kwargs(m), rngs=rngs)

  def _lm(self, model, batch, key):
    segments = batch["segments"]
    valid = segments > 0
    logits, feats = model(batch["ids"], valid, key=key, segments=segments, positions=batch["positions"])
    loss, aux = causal_lm_loss(logits, batch["ids"], valid, segments)
    return loss, aux, feats["hidden"], valid

  def loss(self, model: GPT, batch, method_state, key, step, target=None):
    loss, aux, hidden, valid = self._lm(model, batch, key)
    metrics = {"accuracy": aux["accuracy"], "perplexity": aux["perplexity"], "num_targets": aux["num_targets"]}
    return loss, {**metrics, **collapse_metrics(masked_mean(hidden, valid))}, method_state

  def heldout(self, model: GPT, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Next-token loss (nats) and accuracy on held-out rows, no dropout: {name: (sum, count)}."""
    loss, aux, _, _ = self._lm(model, inputs, None)
    n = aux["num_targets"]
    return {"lm_loss": (loss * n, n), "lm_accuracy": (aux["accuracy"] * n, n)}

  def token_features(self, model: GPT, inputs, key=None) -> jax.Array:
    """The last layer's state of every token, [B, L, D] float32 (each has read only its left);
    with `key`, dropout drawn from it (training mode)."""
    _, feats = model(inputs["ids"], inputs["segments"] > 0, key=key, segments=inputs["segments"],
                     positions=inputs["positions"])
    return feats["hidden"].astype(jnp.float32)
