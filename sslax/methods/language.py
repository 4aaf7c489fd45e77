"""What the token-row methods share (BERT in `bert.py`, GPT in `gpt.py`): their inputs, config
checks, pooled features and the probe data read with the pretraining tokenizer.

Batches are packed token rows (`sslax.data.packing`): {"ids", "segments",
"positions": [B, L] int32}. Masking, next-sentence pairs and dropout are
drawn on device from the step's key.
"""
from __future__ import annotations

import jax
import ml_collections

from sslax.config import check_config_value
from sslax.data.modality import TokenRows
from sslax.data.packing import pair_key
from sslax.eval import KNN, HeldoutMetrics, LinearProbe
from sslax.methods.base import Method
from sslax.models.pooling import pool_tokens


class TokenMethod(Method):
  """A method on packed token rows: inputs, shared config checks, pooled features, probe data,
  and the held-out objective (`heldout`) reported by `HeldoutMetrics`."""

  # whether the held-out objective also runs every train.knn_every steps (a model with no probe
  # data to monitor on: GPT on unlabelled text)
  monitor_heldout = False
  # whether the network reads sentence pairs' "type_ids" (BERT's segment embeddings)
  takes_pairs = False

  def __post_init__(self):
    c = self.config
    check_config_value(c, "data.seq_len", lambda v: isinstance(v, int) and 4 <= v <= c.model.max_len,
                       f"an integer in [4, model.max_len={c.model.max_len}]")
    check_config_value(c, "model.dim", lambda v: isinstance(v, int) and v % c.model.num_heads == 0,
                       f"a multiple of model.num_heads={c.model.num_heads}")
    check_config_value(c, "model.vocab_size", lambda v: isinstance(v, int) and v > max(c.data.special_ids.values()),
                       f"an integer above every data.special_ids value {dict(c.data.special_ids)}")
    check_config_value(c, "eval.pooling", lambda v: v in ("mean", "cls", "last"), "'mean', 'cls' or 'last'")
    if pair_key(c.data) and not self.takes_pairs and c.data.get("packing") != "seq2seq":
      raise ValueError(f"data.pair_column / data.pair_key: expected single texts for {c.method.name!r} (its network "
                       f"has no segment embeddings for sentence pairs), got pairs ({pair_key(c.data)!r})")
    super().__post_init__()

  @property
  def inputs(self) -> TokenRows:
    m = self.config.model
    d = self.config.data
    seq2seq = d.get("packing") == "seq2seq"
    return TokenRows(seq_len=int(d.seq_len), vocab_size=int(m.vocab_size), max_len=int(m.max_len),
                     pairs=bool(pair_key(d)) and not seq2seq, targets=seq2seq)

  def evaluators(self):
    return (HeldoutMetrics(monitor=self.monitor_heldout), KNN(), LinearProbe())

  def probe_data(self) -> ml_collections.ConfigDict | None:
    """`eval.probe_data` read with the pretraining tokenizer, special ids, framing and row length
    (unless it sets its own)."""
    probe = super().probe_data()
    if probe is None:
      return None
    from sslax.data.tokenize import TRAINED, tokenizer_cache_path

    d = self.config.data
    inherited = {"tokenizer": tokenizer_cache_path(d) if d.tokenizer in TRAINED else d.tokenizer,
                 "special_ids": d.special_ids.to_dict(), "framing": d.framing, "seq_len": d.seq_len,
                 "vocab_size": d.vocab_size, "data_dir": d.get("data_dir")}
    for key, value in inherited.items():
      if probe.get(key) is None:
        probe[key] = value
    return probe

  def _pool(self, hidden, inputs):
    return pool_tokens(hidden, inputs["segments"] > 0, self.config.eval.get("pooling", "mean"))

  def features(self, model, inputs) -> jax.Array:
    """`token_features` [B, L, D] pooled as `eval.pooling` says: [B, D] float32."""
    return self._pool(self.token_features(model, inputs), inputs)

  def train_features(self, model, inputs, key) -> jax.Array:
    """`features` with dropout drawn from `key`."""
    return self._pool(self.token_features(model, inputs, key), inputs)
