"""Temporal distance prediction: the predictive pretext task for speech, as relative patch position
is for images (Doersch et al. 2015). Two segments of one recording; classify how far apart they are
and which came first.

Per example, from the step's key: a distance bucket c (uniform over the
buckets of `method.gap_edges`, in frames: adjacent, near, far by default), a
gap g uniform in the bucket, an order o; two segments of
`method.segment_frames` log-mel frames, the second g frames after the end of
the first, are cut from the crop (a uniform position that fits) and handed
over in order o. The label is 2c + o; a recording too short for its draw is
weighted out of the loss. Both segments go through the same bidirectional
frame Transformer (Mockingjay's, `sslax.models.frames.FrameTransformer`),
mean-pooled; an MLP on the pair classifies. Related pretexts: "shuffle and
learn" (Misra et al. 2016) for video order; the speech "temporal context"
tasks of Pascual et al. 2019 (PASE) and Ravanelli et al. 2020.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sslax.config import check_config_value, is_positive_int
from sslax.eval import HeldoutMetrics
from sslax.eval.collapse import collapse_metrics
from sslax.methods.base import MethodCard, register
from sslax.methods.speech_frames import FrameMethod
from sslax.models.frames import FrameTransformer
from sslax.models.heads import MLPHead


class TemporalNet(nnx.Module):
  def __init__(self, *, in_dim: int, dim: int, depth: int, num_heads: int, mlp_dim: int, dropout: float,
               num_classes: int, rngs: nnx.Rngs):
    self.encoder = FrameTransformer(in_dim=in_dim, dim=dim, depth=depth, num_heads=num_heads, mlp_dim=mlp_dim,
                                    dropout=dropout, head=False, rngs=rngs)
    self.classifier = MLPHead(2 * dim, dim, num_classes, num_layers=2, batch_norm=False, rngs=rngs)

  def encode(self, feats, valid, key=None):
    return self.encoder.encode(feats, valid, key)

  def __call__(self, first, second, key=None):
    """Segments [B, S, F] each -> (logits [B, classes], pooled first segment [B, D])."""
    k1, k2 = (None, None) if key is None else jax.random.split(key)
    valid = jnp.ones(first.shape[:2], bool)
    h1 = jnp.mean(self.encoder.encode(first, valid, k1)[0], axis=1)
    h2 = jnp.mean(self.encoder.encode(second, valid, k2)[0], axis=1)
    return self.classifier(jnp.concatenate([h1, h2], -1))[0], h1


def segment_pairs(key, feats, valid, *, segment: int, gap_edges):
  """(first [B, S, F], second [B, S, F], labels [B] = 2 * bucket + order, usable [B] bool)."""
  b, t, _ = feats.shape
  k_c, k_g, k_o, k_a = jax.random.split(key, 4)
  edges = jnp.asarray(gap_edges, jnp.int32)
  buckets = len(gap_edges) - 1
  c = jax.random.randint(k_c, (b,), 0, buckets)
  lo, hi = edges[c], edges[c + 1]
  g = lo + jnp.floor(jax.random.uniform(k_g, (b,)) * (hi - lo)).astype(jnp.int32)
  frames = jnp.sum(valid, axis=1)
  room = frames - 2 * segment - g  # the first segment may start at 0 .. room
  usable = room >= 0
  a = jnp.floor(jax.random.uniform(k_a, (b,)) * (jnp.maximum(room, 0) + 1)).astype(jnp.int32)
  a = jnp.minimum(a, jnp.maximum(room, 0))
  idx = jnp.arange(segment)[None, :]
  s1 = jnp.take_along_axis(feats, jnp.minimum(a[:, None] + idx, t - 1)[..., None], axis=1)
  s2 = jnp.take_along_axis(feats, jnp.minimum((a + segment + g)[:, None] + idx, t - 1)[..., None], axis=1)
  order = jax.random.bernoulli(k_o, 0.5, (b,))
  first = jnp.where(order[:, None, None], s2, s1)
  second = jnp.where(order[:, None, None], s1, s2)
  return first, second, 2 * c + order.astype(jnp.int32), usable


@register("temporal_distance")
class TemporalDistance(FrameMethod):
  card = MethodCard(
      family="pretext",
      paper="the predictive pretext of Doersch et al. 2015, [Unsupervised Visual Representation Learning by "
            "Context Prediction](https://arxiv.org/abs/1505.05192), over time; Misra et al. 2016, "
            "[Shuffle and Learn](https://arxiv.org/abs/1603.08561)",
      objective="cross-entropy over (distance bucket, order) of two log-mel segments of one recording",
      loss="",
      reference="sslax's own (no reference implementation for speech); relative_position for images",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_speech_frames.py::test_segment_pairs_are_as_far_apart_as_their_label_says"),
      results=("Speech methods on spoken digits", "MFCC", "Temporal distance at random init",
               "Temporal distance pretrained"))

  def check_config(self):
    super().check_config()
    c = self.config
    check_config_value(c, "method.segment_frames", is_positive_int, "a positive integer (frames)")
    check_config_value(c, "method.gap_edges",
                       lambda v: len(v) >= 2 and all(isinstance(e, int) and e >= 0 for e in v)
                       and all(a < b for a, b in zip(v[:-1], v[1:])),
                       "increasing non-negative integers (frames), at least 2")
    check_config_value(c, "model.num_heads", is_positive_int, "a positive integer")
    frames = self.filterbank.num_frames(int(c.audio.crop_samples))
    need = 2 * c.method.segment_frames + c.method.gap_edges[-1] - 1
    if need > frames:
      raise ValueError(f"audio.crop_samples: expected at least the {need} frames of two method.segment_frames="
                       f"{c.method.segment_frames} segments and the largest gap, got {c.audio.crop_samples} "
                       f"samples = {frames} frames")

  @property
  def num_classes(self) -> int:
    return 2 * (len(self.config.method.gap_edges) - 1)

  def build_model(self, rngs: nnx.Rngs) -> TemporalNet:
    m = self.config.model
    return TemporalNet(in_dim=self.filterbank.num_features, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
                       mlp_dim=m.mlp_dim, dropout=m.dropout, num_classes=self.num_classes, rngs=rngs)

  def _pretext(self, model, feats, valid, key, dropout_key=None):
    m = self.config.method
    first, second, labels, usable = segment_pairs(key, feats, valid, segment=m.segment_frames,
                                                  gap_edges=tuple(m.gap_edges))
    logits, pooled = model(first, second, dropout_key)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    w = usable.astype(jnp.float32)
    correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32) * w
    return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1.0), correct, w, pooled

  def loss(self, model, batch, method_state, key, step, target=None):
    k_crop, k_pair, k_model = jax.random.split(key, 3)
    feats, valid = self.frames(batch["audio"], batch["length"], k_crop)
    loss, correct, w, pooled = self._pretext(model, feats, valid, k_pair, k_model)
    n = jnp.maximum(jnp.sum(w), 1.0)
    return loss, {"accuracy": jnp.sum(correct) / n, "usable_fraction": jnp.mean(w),
                  **collapse_metrics(pooled)}, method_state

  def heldout(self, model, inputs, key) -> dict:
    """{"pretext_accuracy": (pairs classified right, usable pairs)} over the whole held-out recordings;
    padding rows (length 0) are never usable."""
    feats, valid = self.frames(inputs["audio"], inputs["length"])
    _, correct, w, _ = self._pretext(model, feats, valid, key)
    return {"pretext_accuracy": (jnp.sum(correct), jnp.sum(w))}

  def evaluators(self):
    return (*super().evaluators(), HeldoutMetrics())
