"""Contrastive Predictive Coding (van den Oord et al. 2018) for speech through the shared train step.

A strided conv encoder turns the waveform into frames z_t, a GRU summarizes
z_<=t into c_t, and for each k = 1..K a linear map W_k predicts z_{t+k} from
c_t, scored by InfoNCE against N negatives: other frames of the same
utterance (`method.negatives: utterance`), of the whole batch (`batch`,
CPC_audio's default), or of the batch's utterances by the same speaker
(`speaker`, the paper's best for phones: the batch then carries the speaker
ids, `Audio(with_speaker=True)`). Strides are adapted to 8 kHz: 5, 4, 2, 2 (80 samples,
10 ms frames, as the paper's 160 at 16 kHz).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.audio import normalize, random_crop
from sslax.config import check_config_value, is_positive_int
from sslax.eval.collapse import collapse_metrics
from sslax.data.modality import Audio
from sslax.losses.cpc import MODES as NEGATIVES
from sslax.losses.cpc import cpc_loss, sample_future_negatives
from sslax.methods.base import MethodCard, register
from sslax.methods.wav2vec2 import Wav2Vec2Method
from sslax.models.cpc import CPC
from sslax.models.pooling import masked_mean
from sslax.models.wav2vec2 import conv_output_lengths


@register("cpc")
class CPCMethod(Wav2Vec2Method):
  card = MethodCard(
      family="contrastive",
      paper="van den Oord et al. 2018, [Representation Learning with Contrastive Predictive Coding]"
            "(https://arxiv.org/abs/1807.03748)",
      objective="InfoNCE of W_k c_t against the true frame z_{t+k} and N negatives, for k = 1..K",
      loss="sslax.losses.cpc.cpc_loss",
      reference="facebookresearch/CPC_audio (`CPCUnsupersivedCriterion`, `CPCEncoder`, `CPCAR`)",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_cpc.py::test_cpc_loss_matches_numpy",
             "tests/test_cpc.py::test_negatives_are_never_the_positive",
             "tests/test_cpc.py::test_speaker_negatives_put_the_speaker_in_every_batch"),
      results=("Speech methods on spoken digits", "MFCC", "CPC at random init", "CPC pretrained"))

  @property
  def inputs(self) -> Audio:
    """wav2vec 2.0's waveforms, with the speaker ids when the negatives are the speaker's."""
    return dataclasses.replace(super().inputs, with_speaker=self.config.method.negatives == "speaker")

  def check_config(self):
    c = self.config
    check_config_value(c, "method.num_predicts", is_positive_int, "a positive integer (future steps K)")
    check_config_value(c, "method.num_negatives", is_positive_int, "a positive integer")
    check_config_value(c, "method.negatives", lambda v: v in NEGATIVES, f"one of {list(NEGATIVES)}")
    check_config_value(c, "audio.crop_samples", is_positive_int, "a positive integer")
    check_config_value(c, "data.max_samples", lambda v: is_positive_int(v) and v >= c.audio.crop_samples,
                       f"an integer >= audio.crop_samples={c.audio.crop_samples}")
    check_config_value(c, "model.hidden", is_positive_int, "a positive integer")
    frames = conv_output_lengths(int(c.audio.crop_samples), c.model.conv_layers)
    if frames <= c.method.num_predicts + 1:
      raise ValueError(f"audio.crop_samples: expected more than method.num_predicts + 1 = "
                       f"{c.method.num_predicts + 1} frames, got {c.audio.crop_samples} samples = {frames} frames")

  def build_model(self, rngs: nnx.Rngs) -> CPC:
    m = self.config.model
    return CPC(conv_layers=tuple(tuple(layer) for layer in m.conv_layers), hidden=m.hidden,
               num_predicts=self.config.method.num_predicts, rngs=rngs)

  def loss(self, model, batch, method_state, key, step, target=None):
    c = self.config.method
    k_crop, k_neg = jax.random.split(key)
    audio, lengths = random_crop(k_crop, batch["audio"].astype(jnp.float32), batch["length"],
                                 self.config.audio.crop_samples)
    out = model(normalize(audio, lengths), lengths)
    t = out["z"].shape[1]
    frames = jnp.sum(out["valid"], axis=1)
    negatives = [sample_future_negatives(k, frames, t, i + 1, c.num_negatives, c.negatives, batch.get("speaker"))
                 for i, k in enumerate(jax.random.split(k_neg, c.num_predicts))]
    loss, aux = cpc_loss(out["predictions"], out["z"], out["valid"], negatives, c.negatives)
    metrics = {"accuracy": aux["accuracy"], "accuracy_k1": aux["accuracy_k1"],
               f"accuracy_k{c.num_predicts}": aux[f"accuracy_k{c.num_predicts}"],
               **collapse_metrics(masked_mean(out["c"], out["valid"]))}
    return loss, metrics, method_state

  def _encode(self, model, inputs):
    audio, lengths = inputs["audio"].astype(jnp.float32), inputs["length"]
    return model.encode(normalize(audio, lengths), lengths)

  def features(self, model, inputs) -> jax.Array:
    """The GRU context (or `eval.feature_layer: encoder`), mean-pooled over valid frames: [B, H]."""
    z, ctx, valid = self._encode(model, inputs)
    return masked_mean(z if self.config.eval.get("feature_layer") == "encoder" else ctx, valid)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    z, ctx, valid = self._encode(model, inputs)
    return {"encoder": masked_mean(z, valid), "context": masked_mean(ctx, valid)}
