"""wav2vec 2.0 pretraining (Baevski et al., NeurIPS 2020) through the shared train step.

Per step, all on device from the step's key: a random crop of each
recording, per-utterance normalization, span masks over the feature frames,
distractors from the other masked frames of the same utterance, Gumbel noise
and dropout. The loss is L_m + alpha L_d + beta * feature penalty.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment.audio import normalize, random_crop, sample_negatives, span_mask
from sslax.config import check_config_value
from sslax.data.modality import Audio
from sslax.eval import KNN, LinearProbe
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.losses.wav2vec2 import (codebook_diversity_loss, codebook_perplexity, feature_penalty,
                                   gumbel_temperature, wav2vec2_contrastive_loss)
from sslax.methods.base import Method, MethodCard, register
from sslax.models.pooling import masked_mean
from sslax.models.wav2vec2 import Wav2Vec2, conv_output_lengths


def build_wav2vec2(model_config, rngs: nnx.Rngs) -> Wav2Vec2:
  m = model_config
  return Wav2Vec2(conv_layers=tuple(tuple(layer) for layer in m.conv_layers), extractor_mode=m.extractor_mode,
                  dim=m.dim, depth=m.depth, num_heads=m.num_heads, mlp_dim=m.mlp_dim, final_dim=m.final_dim,
                  latent_groups=m.latent_groups, latent_vars=m.latent_vars, pos_conv_kernel=m.pos_conv_kernel,
                  pos_conv_groups=m.pos_conv_groups, dropout=m.dropout, dropout_input=m.dropout_input,
                  dropout_features=m.dropout_features, feature_grad_mult=m.feature_grad_mult, rngs=rngs)


def pooled_features(model: Wav2Vec2, audio: jax.Array, lengths: jax.Array, layer: str = "last") -> jax.Array:
  """Mean over valid frames of the normalized recording's context features: [B, D] float32."""
  c, feats = model.encode(normalize(audio, lengths), lengths)
  return masked_mean(c if layer == "last" else feats[layer], feats["valid"])


@register("wav2vec2")
class Wav2Vec2Method(Method):
  card = MethodCard(
      family="quantized contrastive",
      paper="Baevski et al. 2020, [wav2vec 2.0](https://arxiv.org/abs/2006.11477)",
      objective="InfoNCE of the context vector at each masked frame against its quantized target and "
                "100 distractors from other masked frames, + alpha * codebook diversity, + feature penalty",
      loss="sslax.losses.wav2vec2.wav2vec2_contrastive_loss",
      reference="fairseq `wav2vec2.py` (`compute_mask_indices`, `sample_negatives`); Hugging Face "
                "`Wav2Vec2ForPreTraining`",
      tests=("tests/test_wav2vec2.py::test_smoke_pretrain_then_probe_digit_and_speaker_then_finetune",
             "tests/test_wav2vec2.py::test_contrastive_loss_matches_numpy_and_masks_negatives_equal_to_the_positive",
             "tests/test_wav2vec2.py::test_span_mask_statistics_match_the_reference_and_spare_padding",
             "tests/test_wav2vec2.py::test_diversity_loss_hand_computed"),
      results=("wav2vec 2.0 on spoken digits", "MFCC", "wav2vec 2.0 at random init", "wav2vec 2.0 pretrained"))

  @property
  def inputs(self) -> Audio:
    """Waveforms padded or cut to `data.max_samples` (`data.record_keys` renames the source's
    fields), at least `audio.crop_samples` long."""
    c = self.config
    return Audio(max_samples=int(c.data.max_samples), min_samples=int(c.audio.crop_samples),
                 record_keys=dict(c.data.get("record_keys") or {}), crop_samples=int(c.audio.crop_samples))

  def check_config(self):
    c = self.config
    check_config_value(c, "method.temperature", lambda v: v > 0, "a positive number")
    check_config_value(c, "method.num_negatives", lambda v: isinstance(v, int) and v > 0, "a positive integer")
    check_config_value(c, "method.diversity_weight", lambda v: v >= 0, "a non-negative number")
    check_config_value(c, "method.feature_penalty_weight", lambda v: v >= 0, "a non-negative number")
    check_config_value(c, "method.mask_prob", lambda v: 0 < v <= 1, "a number in (0, 1]")
    check_config_value(c, "method.mask_length", lambda v: isinstance(v, int) and v > 0, "a positive integer")
    check_config_value(c, "method.gumbel_temperature", lambda v: len(v) == 3 and 0 < v[1] <= v[0] and 0 < v[2] <= 1,
                       "(start, end, decay) with 0 < end <= start and 0 < decay <= 1")
    check_config_value(c, "audio.crop_samples", lambda v: isinstance(v, int) and v > 0, "a positive integer")
    check_config_value(c, "data.max_samples", lambda v: isinstance(v, int) and v >= c.audio.crop_samples,
                       f"an integer >= audio.crop_samples={c.audio.crop_samples}")
    frames = conv_output_lengths(int(c.audio.crop_samples), c.model.conv_layers)
    if frames < c.method.mask_length + 1:
      raise ValueError(f"audio.crop_samples: expected a crop long enough for more than one mask span of "
                       f"method.mask_length={c.method.mask_length} frames, got {c.audio.crop_samples} samples "
                       f"= {frames} frames")
    check_config_value(c, "model.dim", lambda v: isinstance(v, int) and v % c.model.num_heads == 0,
                       f"a multiple of model.num_heads={c.model.num_heads}")

  def build_model(self, rngs: nnx.Rngs) -> Wav2Vec2:
    return build_wav2vec2(self.config.model, rngs)

  def loss(self, model: Wav2Vec2, batch, method_state, key, step, target=None):
    c = self.config
    k_crop, k_mask, k_neg, k_model = jax.random.split(key, 4)
    audio, lengths = random_crop(k_crop, batch["audio"].astype(jnp.float32), batch["length"],
                                 c.audio.crop_samples)
    audio = normalize(audio, lengths)
    frames = model.frame_lengths(lengths)
    num_frames = conv_output_lengths(int(audio.shape[1]), model.conv_layers)
    mask = span_mask(k_mask, frames, num_frames, mask_prob=c.method.mask_prob, mask_length=c.method.mask_length,
                     min_masks=c.method.get("min_masks", 2))
    tau = gumbel_temperature(step, start=c.method.gumbel_temperature[0], end=c.method.gumbel_temperature[1],
                             decay=c.method.gumbel_temperature[2])
    out = model(audio, lengths, mask, tau=tau, key=k_model)
    neg_idx, has_negatives = sample_negatives(k_neg, mask, c.method.num_negatives)
    weights = (mask & has_negatives[:, None]).astype(jnp.float32)
    contrastive, aux = wav2vec2_contrastive_loss(out["context"], out["quantized"], neg_idx, weights,
                                                 temperature=c.method.temperature)
    groups, num_vars = out["probs"].shape[-2:]
    ppl = codebook_perplexity(out["probs"].reshape(-1, groups, num_vars), mask.reshape(-1))
    diversity = codebook_diversity_loss(ppl, groups, num_vars)
    penalty = feature_penalty(out["features"], out["valid"])
    loss = contrastive + c.method.diversity_weight * diversity + c.method.feature_penalty_weight * penalty
    # the perplexity of the hard codes actually used, as fairseq's code_perplexity
    hard = jax.nn.one_hot(out["codes"], num_vars).reshape(-1, groups, num_vars)
    code_ppl = codebook_perplexity(hard, mask.reshape(-1))
    pooled = masked_mean(out["context"], out["valid"])
    metrics = {"contrastive_loss": contrastive, "diversity_loss": diversity, "feature_penalty": penalty,
               "accuracy": aux["accuracy"], "prob_perplexity": ppl, "code_perplexity": code_ppl,
               "gumbel_temperature": tau,
               "mask_fraction": jnp.sum(mask) / jnp.maximum(jnp.sum(out["valid"]), 1),
               **collapse_metrics(pooled)}
    return loss, metrics, method_state

  def features(self, model: Wav2Vec2, inputs) -> jax.Array:
    return pooled_features(model, inputs["audio"].astype(jnp.float32), inputs["length"],
                           self.config.eval.get("feature_layer", "last"))

  def layer_features(self, model: Wav2Vec2, inputs) -> dict[str, jax.Array]:
    """The Transformer's input ("input") and each layer's output, mean-pooled over valid frames."""
    audio, lengths = inputs["audio"].astype(jnp.float32), inputs["length"]
    _, feats = model.encode(normalize(audio, lengths), lengths)
    return {k: masked_mean(v, feats["valid"]) for k, v in feats.items() if k == "input" or k.startswith("layer_")}

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(weighted_sum=True))
