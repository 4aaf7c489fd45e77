"""Triplet loss: an anchor nearer its positive than any mined negative, by a margin.

Schroff, Kalenichenko, Philbin, "FaceNet", CVPR 2015: l2-normalized
embeddings (the projector's output), squared distances, margin
`method.margin`, negatives mined online over the global batch
(`method.mining`: FaceNet's "semi_hard", or "hard"). Positives: the other
augmented view of the same image (the self-supervised form), or the rows that
share `method.label_key` with the anchor when the data carries it (classes,
speakers).
"""
from __future__ import annotations

import jax.numpy as jnp

from sslax.config import check_config_value
from sslax.data.modality import Combined, Labels
from sslax.eval import KNN, LinearProbe
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.losses import l2_normalize, triplet_loss
from sslax.losses.triplet import MINING
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import TwoViewMethod, image_inputs


@register("triplet")
class Triplet(TwoViewMethod):
  card = MethodCard(
      family="contrastive",
      paper="Schroff et al. 2015, [FaceNet: A Unified Embedding for Face Recognition and Clustering]"
            "(https://arxiv.org/abs/1503.03832)",
      objective="max(||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha, 0) over anchors and positives (two views of "
                "an image, or a shared label), negatives mined semi-hard or hard in the global batch",
      loss="sslax.losses.triplet_loss",
      reference="TensorFlow Addons `triplet_semihard_loss` / `triplet_hard_loss`; PyTorch `TripletMarginLoss`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_triplet.py::test_mined_triplets_match_numpy_and_torch_triplet_margin_loss"),
      results=("Every method on CIFAR-10", "random init", "Triplet, semi-hard"))

  @property
  def label_key(self) -> str:
    return self.config.method.get("label_key") or ""

  @property
  def inputs(self):
    images = image_inputs(self.config)
    return Combined((images, Labels(self.label_key))) if self.label_key else images

  @property
  def probe_inputs(self):
    return image_inputs(self.config)

  def check_config(self):
    m = "method."
    check_config_value(self.config, m + "margin", lambda v: v > 0, "a positive number")
    check_config_value(self.config, m + "mining", lambda v: v in MINING, f"one of {list(MINING)}")

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    ids = batch[self.label_key] if self.label_key else jnp.arange(n)
    labels = jnp.concatenate([ids, ids]).astype(jnp.int32)
    m = self.config.method
    loss, aux = triplet_loss(l2_normalize(z.astype(jnp.float32)), labels, margin=m.margin, mining=m.mining,
                             squared=True)
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe())
