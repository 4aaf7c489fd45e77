"""What the frame-level speech methods share (APC, Mockingjay, TERA): waveform inputs, a random
crop, the on-device filterbank (`sslax.augment.filterbank`, config `fbank`) and the probes' view of
each layer, mean-pooled over the valid frames of the whole recording."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.augment.audio import random_crop
from sslax.augment.filterbank import make_filterbank
from sslax.config import check_config_value, is_positive_int
from sslax.data.modality import Audio
from sslax.eval import KNN, LinearProbe
from sslax.eval.layer_probe import LayerProbe
from sslax.methods.base import Method
from sslax.models.pooling import masked_mean

FBANK_KINDS = ("log_mel", "mfcc")


class FrameMethod(Method):
  """Base of the filterbank-frame methods: subclasses define `build_model` (a `sslax.models.frames`
  network with `encode(feats, valid)`) and `loss`."""

  @property
  def inputs(self) -> Audio:
    """Waveforms padded or cut to `data.max_samples`, at least `audio.crop_samples` long."""
    c = self.config
    return Audio(max_samples=int(c.data.max_samples), min_samples=int(c.audio.crop_samples),
                 record_keys=dict(c.data.get("record_keys") or {}), crop_samples=int(c.audio.crop_samples))

  @property
  def filterbank(self):
    return make_filterbank(self.config)

  def check_config(self):
    c = self.config
    check_config_value(c, "audio.crop_samples", is_positive_int, "a positive integer")
    check_config_value(c, "data.max_samples", lambda v: is_positive_int(v) and v >= c.audio.crop_samples,
                       f"an integer >= audio.crop_samples={c.audio.crop_samples}")
    check_config_value(c, "data.sample_rate", is_positive_int, "a positive integer (Hz)")
    check_config_value(c, "fbank.kind", lambda v: v in FBANK_KINDS, f"one of {list(FBANK_KINDS)}")
    check_config_value(c, "fbank.n_fft", is_positive_int, "a positive integer (samples)")
    check_config_value(c, "fbank.win_length", lambda v: is_positive_int(v) and v <= c.fbank.n_fft,
                       f"an integer in [1, fbank.n_fft={c.fbank.n_fft}]")
    check_config_value(c, "fbank.hop_length", is_positive_int, "a positive integer (samples)")
    check_config_value(c, "fbank.n_mels", is_positive_int, "a positive integer")
    if c.fbank.kind == "mfcc":
      check_config_value(c, "fbank.n_mfcc", lambda v: is_positive_int(v) and v <= c.fbank.n_mels,
                         f"an integer in [1, fbank.n_mels={c.fbank.n_mels}]")
    check_config_value(c, "model.dim", lambda v: is_positive_int(v) and v % c.model.get("num_heads", 1) == 0,
                       f"a positive multiple of model.num_heads={c.model.get('num_heads', 1)}")
    check_config_value(c, "model.depth", is_positive_int, "a positive integer")

  def frames(self, audio: jax.Array, lengths: jax.Array, key: jax.Array | None = None):
    """(features [B, T, F], valid [B, T]) of a random `audio.crop_samples` crop (key given) or of the
    whole recordings (key None)."""
    audio = audio.astype(jnp.float32)
    if key is not None:
      audio, lengths = random_crop(key, audio, lengths, self.config.audio.crop_samples)
    return self.filterbank(audio, lengths)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    """{"input", "layer_0", ...}: each layer mean-pooled over the valid frames, [B, D] float32."""
    feats, valid = self.frames(inputs["audio"], inputs["length"])
    _, layers = model.encode(feats, valid)
    return {name: masked_mean(h, valid) for name, h in layers.items()}

  def features(self, model, inputs) -> jax.Array:
    """The last layer (or `eval.feature_layer`) mean-pooled over the valid frames: [B, D]."""
    feats, valid = self.frames(inputs["audio"], inputs["length"])
    last, layers = model.encode(feats, valid)
    layer = self.config.eval.get("feature_layer", "last")
    return masked_mean(last if layer == "last" else layers[layer], valid)

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(weighted_sum=True))
