"""The CPC network (van den Oord et al. 2018; facebookresearch/CPC_audio `CPCEncoder`, `CPCAR`): a strided
conv encoder of the waveform, a GRU context network over its frames, and one linear predictor per future
step k = 1..K (the paper's W_k)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.models.wav2vec2 import FeatureEncoder, conv_output_lengths


class CPC(nnx.Module):
  """audio [B, L] -> z [B, T, C] (encoder), c [B, T, H] (GRU context), predictions W_k c [K, B, T, C].

  The encoder is wav2vec 2.0's `FeatureEncoder` in "layer_norm" mode with biases: a normalization
  over channels per frame after every convolution, as CPC_audio's `ChannelNorm`, then GELU where
  CPC_audio has ReLU."""

  def __init__(self, *, conv_layers, hidden: int = 256, num_predicts: int = 12, rngs: nnx.Rngs):
    self.encoder = FeatureEncoder(conv_layers, mode="layer_norm", conv_bias=True, rngs=rngs)
    self.conv_layers = self.encoder.conv_layers
    c = self.encoder.num_features
    self.context = nnx.RNN(nnx.GRUCell(c, hidden, rngs=rngs), rngs=False)
    self.predictors = nnx.List([nnx.Linear(hidden, c, rngs=rngs) for _ in range(num_predicts)])
    self.hidden = hidden

  def frame_lengths(self, lengths):
    return conv_output_lengths(lengths, self.conv_layers)

  def encode(self, audio: jax.Array, lengths: jax.Array):
    """(z [B, T, C], c [B, T, H], valid [B, T] bool)."""
    z = self.encoder(audio)
    valid = jnp.arange(z.shape[1])[None, :] < self.frame_lengths(lengths)[:, None]
    c = self.context(z, initial_carry=jnp.zeros((z.shape[0], self.hidden), z.dtype))
    return z, c, valid

  def __call__(self, audio: jax.Array, lengths: jax.Array):
    """{"z", "c", "valid", "predictions": [K, B, T, C]}."""
    z, c, valid = self.encode(audio, lengths)
    preds = jnp.stack([p(c) for p in self.predictors])
    return {"z": z, "c": c, "valid": valid, "predictions": preds}
