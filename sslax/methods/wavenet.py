"""WaveNet (van den Oord et al. 2016) as a self-supervised speech model: maximum likelihood of the
next mu-law sample, through the shared train step.

Each step: a random crop of each recording, mu-law companded to 256 classes;
the network predicts sample t + 1 from samples <= t (`sslax.models.wavenet`),
cross-entropy over the valid samples (reported in bits per sample). The
held-out split's bits per sample sits beside a mu-law unigram model (the
training split's class histogram, add-one smoothed: `MuLawUnigram`) on the
same samples; `AudioSamples` writes `<workdir>/samples.wav`,
drawn in one compiled scan. Probes read each block's residual stream,
mean-pooled over the valid samples.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.audio import mu_law_encode, random_crop
from sslax.config import check_config_value, is_positive_int
from sslax.eval import KNN, HeldoutMetrics, LinearProbe
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.losses.language import causal_lm_loss
from sslax.eval.likelihood import AudioSamples, MuLawUnigram
from sslax.methods.base import MethodCard, register
from sslax.methods.wav2vec2 import Wav2Vec2Method
from sslax.models.pooling import masked_mean
from sslax.models.wavenet import WaveNet

LN2 = math.log(2.0)


@register("wavenet")
class WaveNetMethod(Wav2Vec2Method):
  card = MethodCard(
      family="autoregressive",
      paper="van den Oord et al. 2016, [WaveNet: A Generative Model for Raw Audio](https://arxiv.org/abs/1609.03499)",
      objective="$-\\log_2 p(x_{t+1} \\mid x_{\\le t})$ per sample, a 256-way softmax over mu-law classes",
      loss="sslax.losses.language.causal_lm_loss",
      reference="ibab/tensorflow-wavenet (`mu_law_encode`, `WaveNetModel`, fast generation queues)",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_wavenet.py::test_generation_equals_the_forward_pass_and_is_causal",
             "tests/test_wavenet.py::test_mu_law_matches_numpy"),
      results=("Speech methods on spoken digits", "MFCC", "WaveNet at random init", "WaveNet pretrained"))

  def check_config(self):
    c = self.config
    check_config_value(c, "model.dilations", lambda v: len(v) > 0 and all(is_positive_int(d) for d in v),
                       "a non-empty sequence of positive integers")
    check_config_value(c, "model.channels", is_positive_int, "a positive integer")
    check_config_value(c, "model.skip", is_positive_int, "a positive integer")
    check_config_value(c, "model.classes", lambda v: is_positive_int(v) and v >= 2, "an integer >= 2")
    check_config_value(c, "audio.crop_samples", lambda v: is_positive_int(v) and v >= 2, "an integer >= 2")
    check_config_value(c, "data.max_samples", lambda v: is_positive_int(v) and v >= c.audio.crop_samples,
                       f"an integer >= audio.crop_samples={c.audio.crop_samples}")
    check_config_value(c, "method.sample_seconds", lambda v: v >= 0, "a non-negative number")
    check_config_value(c, "method.temperature", lambda v: v > 0, "a positive number")

  def build_model(self, rngs: nnx.Rngs) -> WaveNet:
    m = self.config.model
    return WaveNet(dilations=tuple(m.dilations), channels=m.channels, skip=m.skip, classes=m.classes, rngs=rngs)

  def ids(self, audio, lengths):
    """(mu-law ids [B, L], valid [B, L])."""
    valid = jnp.arange(audio.shape[1])[None, :] < lengths[:, None]
    return jnp.where(valid, mu_law_encode(audio, self.config.model.classes), 0), valid

  def loss(self, model, batch, method_state, key, step, target=None):
    audio, lengths = random_crop(key, batch["audio"].astype(jnp.float32), batch["length"],
                                 self.config.audio.crop_samples)
    ids, valid = self.ids(audio, lengths)
    logits, layers = model.encode(ids)
    loss, _ = causal_lm_loss(logits, ids, valid)
    last = layers[f"layer_{len(model.blocks) - 1}"]
    return loss, {"bits_per_sample": loss / LN2, **collapse_metrics(masked_mean(last, valid))}, method_state

  def _layers(self, model, inputs):
    ids, valid = self.ids(inputs["audio"].astype(jnp.float32), inputs["length"])
    return model.encode(ids)[1], valid

  def features(self, model, inputs) -> jax.Array:
    layers, valid = self._layers(model, inputs)
    name = self.config.eval.get("feature_layer", "last")
    return masked_mean(layers[f"layer_{len(model.blocks) - 1}" if name == "last" else name], valid)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    layers, valid = self._layers(model, inputs)
    return {k: masked_mean(v, valid) for k, v in layers.items()}

  def heldout(self, model, inputs, key) -> dict:
    """{"bits_per_sample": (sum, count)} over the valid next samples; padding rows (length 0) count
    nothing."""
    ids, valid = self.ids(inputs["audio"].astype(jnp.float32), inputs["length"])
    loss, aux = causal_lm_loss(model(ids), ids, valid)
    return {"bits_per_sample": (loss * aux["num_targets"] / LN2, aux["num_targets"])}

  def sample(self, model, key, num_samples: int) -> jax.Array:
    """[num_samples] mu-law ids drawn after a silent first sample at `method.temperature`."""
    first = jnp.full((1,), self.config.model.classes // 2, jnp.int32)
    return model.generate(key, first, num_samples, temperature=float(self.config.method.temperature))[0][0]

  def evaluators(self):
    seconds = float(self.config.method.sample_seconds)
    return (KNN(), LinearProbe(), LayerProbe(weighted_sum=True), HeldoutMetrics(), MuLawUnigram(),
            *((AudioSamples(seconds=seconds),) if seconds else ()))
