"""Mockingjay (Liu et al., ICASSP 2020): masked acoustic modelling through the shared train step.

A bidirectional Transformer over log-mel frames reconstructs the frames of
spans chosen at random (15% of the frames in runs of 7; of the chosen spans
80% are zeroed, 10% replaced by other frames, 10% kept), with an l1 loss on
the chosen frames only (`sslax.augment.frame_masks`). TERA (`sslax.methods.tera`)
adds frequency-band masking and magnitude noise to the same model and loss.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.frame_masks import alter_frames
from sslax.config import check_config_value, is_positive_int
from sslax.eval.collapse import collapse_metrics
from sslax.losses.frames import masked_l1
from sslax.methods.base import MethodCard, register
from sslax.methods.speech_frames import FrameMethod
from sslax.models.frames import FrameTransformer
from sslax.models.pooling import masked_mean


@register("mockingjay")
class Mockingjay(FrameMethod):
  card = MethodCard(
      family="masked prediction",
      paper="Liu et al. 2020, [Mockingjay](https://arxiv.org/abs/1910.12638)",
      objective="l1 reconstruction of the log-mel frames of masked spans (15%, runs of 7, 80/10/10) by a "
                "bidirectional Transformer",
      loss="sslax.losses.frames.masked_l1",
      reference="s3prl `pretrain/mockingjay` (`generate_masked_acoustic_model_data`)",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_speech_frames.py::test_alterations_match_the_reference_statistics",
             "tests/test_speech_frames.py::test_frame_losses_match_numpy"),
      results=("Speech methods on spoken digits", "MFCC", "Mockingjay at random init", "Mockingjay pretrained"))

  def check_config(self):
    super().check_config()
    c = self.config
    check_config_value(c, "method.mask_proportion", lambda v: 0 <= v < 1, "a number in [0, 1)")
    check_config_value(c, "method.mask_consecutive", is_positive_int, "a positive integer (frames)")
    check_config_value(c, "method.mask_frequency", lambda v: 0 <= v < 1, "a number in [0, 1)")
    check_config_value(c, "method.noise_proportion", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    if c.method.mask_proportion == 0 and c.method.mask_frequency == 0:
      raise ValueError("method.mask_proportion, method.mask_frequency: expected at least one above 0 (the loss "
                       "is taken on masked frames and bins), got 0 and 0")
    check_config_value(c, "model.num_heads", is_positive_int, "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> FrameTransformer:
    m = self.config.model
    return FrameTransformer(in_dim=self.filterbank.num_features, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
                            mlp_dim=m.mlp_dim, dropout=m.dropout, rngs=rngs)

  def loss(self, model, batch, method_state, key, step, target=None):
    m = self.config.method
    k_crop, k_alter, k_model = jax.random.split(key, 3)
    feats, valid = self.frames(batch["audio"], batch["length"], k_crop)
    altered, labels, info = alter_frames(k_alter, feats, valid, time_proportion=m.mask_proportion,
                                         span=m.mask_consecutive, freq_fraction=m.mask_frequency,
                                         noise_prob=m.noise_proportion)
    pred, hidden = model(altered, valid, k_model)
    loss = masked_l1(pred, feats, labels)
    n_valid = jnp.maximum(jnp.sum(valid), 1)
    metrics = {"l1": loss, "masked_frames": jnp.sum(info["time"]) / n_valid,
               "labelled_fraction": jnp.sum(labels) / (n_valid * feats.shape[-1]),
               **collapse_metrics(masked_mean(hidden, valid))}
    return loss, metrics, method_state
