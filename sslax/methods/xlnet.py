"""XLNet's permutation language modelling (Yang et al., NeurIPS 2019) through the shared train step.

Each step draws, on device from its key, the tokens to predict (partial prediction: spans
covering 1/`method.plm_k` of each row, `plm_targets`) and a random factorization order of them
(`permutation_masks`); the two-stream network (`sslax.models.xlnet`) predicts every target from
its query stream, which has read the non-targets and the targets before it in the order, never
itself. Inputs are not corrupted: the content stream holds every real token.

Held-out figure: the same network under the left-to-right order with every token a target
(`left_to_right_masks`): the query stream at t then reads t' < t only, so its next-token
cross-entropy over the same rows, tokenizer and targets as GPT's (every token but each
example's first) is a perplexity comparable with GPT's.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.permutation import left_to_right_masks, permutation_masks, plm_targets
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.language import masked_lm_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.language import TokenMethod
from sslax.models.pooling import masked_mean
from sslax.models.xlnet import XLNet


@register("xlnet")
class XLNetPLM(TokenMethod):
  card = MethodCard(
      family="autoregressive",
      paper="Yang et al. 2019, [XLNet](https://arxiv.org/abs/1906.08237)",
      objective="cross-entropy of the last 1/K of a random factorization order (partial prediction), each token "
                "predicted by the query stream from the tokens before it in that order",
      loss="sslax.losses.language.masked_lm_loss",
      reference="zihangdai/xlnet `modeling.py` (`rel_attn_core`, `two_stream_rel_attn`) and `data_utils.py` "
                "(`_local_perm`); Hugging Face `DataCollatorForPermutationLanguageModeling`",
      tests=("tests/test_xlnet.py::test_smoke_pretrain_and_heldout_perplexity",
             "tests/test_xlnet.py::test_permutation_masks_never_let_a_target_see_itself",
             "tests/test_xlnet.py::test_query_stream_reads_only_what_the_order_allows",
             "tests/test_xlnet.py::test_same_loss_and_grads_on_1_and_8_devices"))

  monitor_heldout = True

  def check_config(self):
    c = self.config
    check_config_value(c, "method.plm_k", lambda v: v > 1, "a number > 1 (1/K of the tokens are predicted)")
    check_config_value(c, "method.max_span", lambda v: isinstance(v, int) and v >= 1, "an integer >= 1")
    if "pad" not in c.data.special_ids:
      raise ValueError(f"data.special_ids: expected a 'pad' id for XLNet, got {dict(c.data.special_ids)}")

  def build_model(self, rngs: nnx.Rngs) -> XLNet:
    m = self.config.model
    return XLNet(vocab_size=m.vocab_size, max_len=m.max_len, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
                 mlp_dim=m.mlp_dim, dropout=m.dropout, rngs=rngs)

  def _candidates(self, ids, valid):
    specials = jnp.asarray(sorted(set(self.config.data.special_ids.values())))
    return valid & ~jnp.isin(ids, specials)

  def loss(self, model: XLNet, batch, method_state, key, step, target=None):
    c = self.config
    k_tgt, k_perm, k_drop = jax.random.split(key, 3)
    ids, segments = batch["ids"], batch["segments"]
    valid = segments > 0
    targets = plm_targets(k_tgt, self._candidates(ids, valid), plm_probability=1.0 / c.method.plm_k,
                          max_span=int(c.method.max_span))
    content, query = permutation_masks(k_perm, targets, valid, segments)
    hidden, g, _ = model(ids, content, query, key=k_drop)
    loss, aux = masked_lm_loss(model.lm_logits(g), ids, targets.astype(jnp.float32))
    metrics = {"plm_accuracy": aux["accuracy"], "num_targets": aux["num_targets"],
               "target_fraction": jnp.sum(targets) / jnp.maximum(jnp.sum(valid), 1)}
    return loss, {**metrics, **collapse_metrics(masked_mean(hidden, valid))}, method_state

  def heldout(self, model: XLNet, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Left-to-right next-token loss and accuracy (see the module docstring): {name: (sum, count)}."""
    ids, segments = inputs["ids"], inputs["segments"]
    valid = segments > 0
    content, query = left_to_right_masks(valid, segments)
    _, g, _ = model(ids, content, query)
    # every token but the first of each example, as GPT's next-token targets
    first = jnp.concatenate([jnp.ones_like(valid[:, :1]), segments[:, 1:] != segments[:, :-1]], axis=1)
    weights = (valid & ~first).astype(jnp.float32)
    loss, aux = masked_lm_loss(model.lm_logits(g), ids, weights)
    n = aux["num_targets"]
    return {"lm_loss": (loss * n, n), "lm_accuracy": (aux["accuracy"] * n, n)}

  def token_features(self, model: XLNet, inputs, key=None) -> jax.Array:
    """The content stream's last layer with full bidirectional attention (no targets), [B, L, D]."""
    segments = inputs["segments"]
    valid = segments > 0
    allowed = valid[:, None, :] & (segments[:, :, None] == segments[:, None, :])
    hidden, _, _ = model(inputs["ids"], allowed, key=key)
    return hidden.astype(jnp.float32)
