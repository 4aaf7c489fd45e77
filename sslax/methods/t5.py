"""T5's span-corruption pretraining (Raffel et al., JMLR 2020) on the encoder-decoder Transformer
(`sslax.models.seq2seq`), through the shared train step.

Rows are `data.seq_len` raw tokens cut from the continuous text (`data.packing='concat'`,
`framing='eos'`); each step corrupts them on device from its key
(`sslax.augment.denoising.t5_span_corruption`: noise density `method.noise_density`, mean span
`method.mean_noise_span_length`, as HF `run_t5_mlm_flax.py`), the encoder reads the corrupted
input, the decoder predicts the target (sentinel, dropped span, ...) teacher-forced, its inputs
the targets shifted right after `pad` (T5's `decoder_start_token_id`). `method.num_sentinels`
ids at the top of `model.vocab_size` are the sentinels (the tokenizer's vocabulary below them).
Pick data.seq_len with `t5_lengths(inputs_length)` to get inputs of exactly inputs_length.
Features for probes: the encoder's states of the uncorrupted text. (The split's last row, shorter
than the others, is corrupted with its padding: one row of the split.)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.denoising import noise_counts, t5_span_corruption
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.language import masked_lm_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.language import TokenMethod
from sslax.models.language import attention_kwargs
from sslax.models.seq2seq import EncoderDecoder


def shift_right(targets: jax.Array, start_id: int) -> jax.Array:
  """Decoder inputs of teacher forcing: [start, t_0, ..., t_{n-2}]."""
  return jnp.concatenate([jnp.full_like(targets[:, :1], start_id), targets[:, :-1]], axis=1)


@register("t5")
class T5SpanCorruption(TokenMethod):
  card = MethodCard(
      family="autoregressive",
      paper="Raffel et al. 2020, [T5](https://arxiv.org/abs/1910.10683)",
      objective="decoder cross-entropy of the corrupted spans (each after its sentinel) given the input with each "
                "span replaced by one sentinel",
      loss="sslax.losses.language.masked_lm_loss",
      reference="Hugging Face `run_t5_mlm_flax.py` (`random_spans_noise_mask`, `filter_input_ids`); "
                "google-research/text-to-text-transfer-transformer",
      tests=("tests/test_seq2seq_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_seq2seq_methods.py::test_same_loss_and_grads_on_1_and_8_devices",
             "tests/test_denoising.py::test_span_corruption_keeps_every_token_once_and_counts_exactly",
             "tests/test_seq2seq.py::test_cached_decoding_equals_teacher_forcing_and_targets_are_causal"))

  def check_config(self):
    c = self.config
    check_config_value(c, "data.framing", lambda v: v == "eos", "'eos' (rows cut from the continuous text)")
    check_config_value(c, "data.packing", lambda v: v == "concat", "'concat' (every row full: fixed noise counts)")
    for name in ("pad", "eos"):
      if name not in c.data.special_ids:
        raise ValueError(f"data.special_ids: expected a {name!r} id for T5, got {dict(c.data.special_ids)}")
    check_config_value(c, "method.noise_density", lambda v: 0 < v < 1, "a number in (0, 1)")
    check_config_value(c, "method.mean_noise_span_length", lambda v: v >= 1, "a number >= 1")
    _, spans = noise_counts(int(c.data.seq_len), c.method.noise_density, c.method.mean_noise_span_length)
    check_config_value(c, "method.num_sentinels", lambda v: isinstance(v, int) and v >= spans,
                       f"an integer >= the {spans} noise spans of a {c.data.seq_len}-token row")
    check_config_value(c, "model.vocab_size", lambda v: v >= c.data.vocab_size + c.method.num_sentinels,
                       f"at least data.vocab_size + method.num_sentinels = {c.data.vocab_size + c.method.num_sentinels}")

  def build_model(self, rngs: nnx.Rngs) -> EncoderDecoder:
    m = self.config.model
    return EncoderDecoder(vocab_size=m.vocab_size, max_len=m.max_len, dim=m.dim, encoder_depth=m.depth,
                          decoder_depth=m.get("decoder_depth") or m.depth, num_heads=m.num_heads,
                          mlp_dim=m.mlp_dim, dropout=m.dropout, pre_norm=bool(m.get("pre_norm", False)),
                          **attention_kwargs(m), rngs=rngs)

  def corrupt(self, key, ids, valid):
    """(encoder inputs, their valid mask, targets, target valid mask, decoder start id) of a batch
    of rows: T5's span corruption (every row full, so every position is valid)."""
    c, s = self.config, self.config.data.special_ids
    inputs, targets, _ = t5_span_corruption(key, ids, vocab_size=int(c.model.vocab_size), eos_id=s["eos"],
                                            pad_id=s["pad"], noise_density=c.method.noise_density,
                                            mean_noise_span_length=c.method.mean_noise_span_length)
    return inputs, jnp.ones(inputs.shape, bool), targets, jnp.ones(targets.shape, bool), s["pad"]

  def _seq2seq(self, model, batch, key, train: bool):
    k_noise, k_drop = jax.random.split(key)
    inputs, input_valid, targets, target_valid, start = self.corrupt(k_noise, batch["ids"], batch["segments"] > 0)
    logits, aux = model(inputs, input_valid, shift_right(targets, start), target_valid,
                        key=k_drop if train else None)
    loss, out = masked_lm_loss(logits, targets, target_valid.astype(jnp.float32))
    return loss, out, aux["encoder"]

  def loss(self, model: EncoderDecoder, batch, method_state, key, step, target=None):
    loss, aux, memory = self._seq2seq(model, batch, key, train=True)
    metrics = {"accuracy": aux["accuracy"], "num_targets": aux["num_targets"]}
    return loss, {**metrics, **collapse_metrics(jnp.mean(memory, axis=1))}, method_state

  def heldout(self, model: EncoderDecoder, inputs, key) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Target cross-entropy and accuracy on held-out rows, noise drawn from `key`: {name: (sum, count)}."""
    loss, aux, _ = self._seq2seq(model, inputs, key, train=False)
    n = aux["num_targets"]
    return {"target_loss": (loss * n, n), "target_accuracy": (aux["accuracy"] * n, n)}

  def token_features(self, model: EncoderDecoder, inputs, key=None) -> jax.Array:
    """The encoder's last layer on the uncorrupted row, [B, L, D] float32."""
    valid = inputs["segments"] > 0
    states, _ = model.encode(inputs["ids"], valid, key)
    return states.astype(jnp.float32)
