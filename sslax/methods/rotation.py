"""Rotation prediction: which of 0, 90, 180 or 270 degrees was an image turned by?

Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by
Predicting Image Rotations", ICLR 2018. As the reference
(gidariss/FeatureLearningRotNet), every image of the batch is shown at all
four rotations in the same batch (B images -> 4B inputs, batch norm over all
of them), and a head on the encoder's pooled features is trained with 4-way
cross-entropy. Before rotating, each image gets one augmented view
(`augment`: a random crop and flip, the reference's CIFAR recipe; no colour
jitter). The crop must be square, or the quarter turns change its shape.

Frozen features for the probes: the encoder's pooled output of the upright
image in its evaluation view (resized to the crop, normalized).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.config import check_config_value
from sslax.data.modality import Images
from sslax.eval import KNN, LinearProbe
from sslax.eval.collapse import collapse_metrics
from sslax.methods.base import Method, MethodCard, register
from sslax.methods.two_view import resnet_stage_features, stage_probe
from sslax.models import MLPHead, build_encoder

NUM_ROTATIONS = 4


def rotate_all(images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Every image at the four quarter turns: ([4B, S, S, C] images, [4B] int32 labels k = 0..3,
  the number of counter-clockwise quarter turns), grouped by rotation ([k=0 x B, k=1 x B, ...])."""
  b = images.shape[0]
  rotated = jnp.concatenate([jnp.rot90(images, k, axes=(1, 2)) for k in range(NUM_ROTATIONS)], axis=0)
  return rotated, jnp.repeat(jnp.arange(NUM_ROTATIONS, dtype=jnp.int32), b)


class RotationNet(nnx.Module):
  """Encoder and a rotation head (linear when `head.num_layers` is 1): `(logits [B, 4], features)`."""

  def __init__(self, model_config, head_config, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.head = MLPHead(self.encoder.num_features, head_config.hidden_dim, NUM_ROTATIONS,
                        num_layers=head_config.num_layers, batch_norm=True, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, train: bool = True):
    h, features = self.encoder(images, train=train)
    logits, _ = self.head(h, train=train)
    return logits, {**features, "embedding": h}


@register("rotation")
class Rotation(Method):
  """Rotation prediction on the shared train step; see `experiments/rotation_cifar10.py`."""
  card = MethodCard(
      family="pretext",
      paper="Gidaris et al. 2018, [Unsupervised Representation Learning by Predicting Image Rotations]"
            "(https://arxiv.org/abs/1803.07728)",
      objective="4-way cross-entropy of which quarter turn (0, 90, 180, 270 degrees) each image was "
                "given; every image is shown at all four",
      loss="",
      reference="gidariss/FeatureLearningRotNet",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_rotation.py::test_loss_is_the_cross_entropy_of_the_rotation_written_out"),
      results=("Every method on CIFAR-10", "random init", "Rotation prediction"))

  @property
  def inputs(self) -> Images:
    size = self.config.data.get("image_size")
    return Images(channels=int(self.config.model.in_channels), image_size=None if size is None else tuple(size),
                  dataset=self.config.data.get("name", ""))

  def check_config(self):
    c = self.config
    check_config_value(c, "augment.crop_size", lambda v: len(v) == 2 and v[0] == v[1],
                       "a square crop (H == W): a quarter turn of it must keep its shape")
    check_config_value(c, "head.num_layers", lambda v: isinstance(v, int) and v >= 1, "a positive integer")
    check_config_value(c, "head.hidden_dim", lambda v: isinstance(v, int) and v > 0, "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> RotationNet:
    return RotationNet(self.config.model, self.config.head, rngs=rngs)

  def loss(self, model, batch, method_state, key, step, target=None):
    views = augment_batch(key, batch["image"], self.config.augment)
    x, labels = rotate_all(views)
    logits, features = model(x, train=True)
    logits = logits.astype(jnp.float32)
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    n = views.shape[0]
    aux = {"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
           **collapse_metrics(features["embedding"][:n])}
    return loss, aux, method_state

  def features(self, model, inputs) -> jax.Array:
    """Frozen, evaluation-mode encoder features [B, D] of raw (uint8 or [0, 1]) upright images."""
    return model.encode(eval_transform(inputs["image"], self.config.augment), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    """{"stage1".."stageN"} of the ResNet encoder on upright evaluation-view images."""
    return resnet_stage_features(model.encoder, eval_transform(inputs["image"], self.config.augment))

  def evaluators(self):
    return (KNN(), LinearProbe(), *stage_probe(self.config))
