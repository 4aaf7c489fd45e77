"""Autoregressive Predictive Coding (Chung et al., Interspeech 2019) through the shared train step.

A unidirectional GRU stack reads log-mel frames and predicts, from the state at
frame t, the frame t + n (`method.shift`; s3prl's `n_future` 5, the paper sweeps
1, 3, 5, 10, 20) with an l1 loss. Predicting further than the next frame makes
the model encode more than the frames' local smoothness. An RNN, as the paper
and s3prl's `pretrain/apc` (3 layers of 512, residual, dropout 0.1); the
`cpu` recipe is narrower.
"""
from __future__ import annotations

import jax
from flax import nnx

from sslax.config import check_config_value, is_positive_int
from sslax.eval.collapse import collapse_metrics
from sslax.losses.frames import future_frame_l1, masked_l1
from sslax.methods.base import MethodCard, register
from sslax.methods.speech_frames import FrameMethod
from sslax.models.frames import FrameGRU
from sslax.models.pooling import masked_mean


@register("apc")
class APC(FrameMethod):
  card = MethodCard(
      family="autoregressive",
      paper="Chung et al. 2019, [An Unsupervised Autoregressive Model for Speech Representation Learning]"
            "(https://arxiv.org/abs/1904.03240)",
      objective="l1 between the GRU's prediction at frame t and the log-mel frame t + n",
      loss="sslax.losses.frames.future_frame_l1",
      reference="s3prl `pretrain/apc` (`n_future`), iamyuanchung/Autoregressive-Predictive-Coding",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_speech_frames.py::test_frame_losses_match_numpy"),
      results=("Speech methods on spoken digits", "MFCC", "APC at random init", "APC pretrained"))

  def check_config(self):
    super().check_config()
    c = self.config
    check_config_value(c, "method.shift", is_positive_int, "a positive integer (frames ahead)")
    frames = self.filterbank.num_frames(int(c.audio.crop_samples))
    if c.method.shift >= frames:
      raise ValueError(f"method.shift: expected fewer than the {frames} frames of audio.crop_samples="
                       f"{c.audio.crop_samples}, got {c.method.shift}")

  def build_model(self, rngs: nnx.Rngs) -> FrameGRU:
    m = self.config.model
    return FrameGRU(in_dim=self.filterbank.num_features, dim=m.dim, depth=m.depth, dropout=m.dropout, rngs=rngs)

  def loss(self, model, batch, method_state, key, step, target=None):
    k_crop, k_model = jax.random.split(key)
    feats, valid = self.frames(batch["audio"], batch["length"], k_crop)
    pred, hidden = model(feats, valid, k_model)
    n = self.config.method.shift
    loss = future_frame_l1(pred, feats, valid, n)
    # what copying frame t as the guess of frame t + n would score: the bar the prediction must clear
    copy = masked_l1(feats[:, :-n], feats[:, n:], valid[:, n:])
    return loss, {"l1": loss, "copy_l1": copy, **collapse_metrics(masked_mean(hidden, valid))}, method_state
