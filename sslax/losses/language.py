"""Language-model losses: masked LM (BERT, Devlin et al. 2019) and causal LM (GPT, Radford et al. 2018)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_lm_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array):
  """Cross-entropy and accuracy over the weighted (selected) positions only.

  Args:
    logits: [B, L, V] predictions.
    targets: [B, L] int original token ids.
    weights: [B, L] float, 1 at selected positions (an explicit mask: token 0 is a real token).

  Returns:
    (mean cross-entropy over selected positions, {"accuracy", "num_targets"}).
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  # the target's log-probability as a product with its one-hot row rather than a gather: the
  # gradient is then softmax - one-hot, one elementwise pass, where a gather's is a scatter (on the
  # CPU a GPT step spent ~60 ms in it; experiments/RESULTS.md, issue 33)
  nll = -jnp.sum(logp * jax.nn.one_hot(targets, logits.shape[-1], dtype=logp.dtype), axis=-1)
  w = weights.astype(jnp.float32)
  total = jnp.sum(w)
  loss = jnp.sum(nll * w) / jnp.maximum(total, 1.0)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return loss, {"accuracy": jnp.sum(correct * w) / jnp.maximum(total, 1.0), "num_targets": total}


def causal_lm_loss(logits: jax.Array, ids: jax.Array, valid: jax.Array, segments: jax.Array | None = None):
  """Next-token cross-entropy: position t predicts ids[t + 1], counted where both are valid (and, in
  packed rows, in the same example: the first token of a packed example is never a target of the
  previous one's last).

  Args:
    logits: [B, L, V]; ids: [B, L] int; valid: [B, L] bool (not padding); segments: optional [B, L] int.

  Returns:
    (mean cross-entropy in nats, {"accuracy", "perplexity": exp(loss), "num_targets"}).
  """
  pairs = valid[:, :-1] & valid[:, 1:]
  if segments is not None:
    pairs = pairs & (segments[:, :-1] == segments[:, 1:])
  # every position's logits with the next token as its target and the last position weighted 0,
  # rather than logits[:, :-1]: the gradient of that slice is a pad of the [B, L, V] logit gradient,
  # which XLA:CPU materialized twice and transposed (~190 ms of a 940 ms GPT step)
  weights = jnp.pad(pairs, ((0, 0), (0, 1))).astype(jnp.float32)
  loss, aux = masked_lm_loss(logits, jnp.roll(ids, -1, axis=1), weights)
  return loss, {**aux, "perplexity": jnp.exp(loss)}
