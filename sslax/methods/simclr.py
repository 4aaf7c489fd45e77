"""SimCLR: two augmented views, a projection head and NT-Xent over the global batch.

Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML 2020.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.losses import nt_xent_loss
from sslax.methods.base import validate_image_batch
from sslax.models import MLPHead, resnet


class EncoderWithProjector(nnx.Module):
  """A ResNet encoder and an MLP projector; `encode` gives the probe features."""

  def __init__(self, model_config, projector_config, *, rngs: nnx.Rngs):
    self.encoder = resnet(model_config.name, in_channels=model_config.in_channels,
                          cifar_stem=model_config.cifar_stem, width=model_config.get("width"), rngs=rngs)
    self.projector = MLPHead(self.encoder.num_features, projector_config.hidden_dim,
                             projector_config.out_dim, num_layers=projector_config.num_layers,
                             batch_norm=projector_config.batch_norm, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, train: bool = True):
    h, features = self.encoder(images, train=train)
    z, _ = self.projector(h, train=train)
    return z, features


@dataclasses.dataclass(frozen=True)
class SimCLR:
  """SimCLR as pure functions over the shared TrainState; see `experiments/simclr_*.py`."""

  config: "ml_collections.ConfigDict"  # noqa: F821

  name = "simclr"

  def build_model(self, rngs: nnx.Rngs) -> EncoderWithProjector:
    return EncoderWithProjector(self.config.model, self.config.projector, rngs=rngs)

  def init_state(self, model) -> dict:
    return {}

  def make_views(self, batch, key):
    k1, k2 = jax.random.split(key)
    recipe = self.config.augment
    return augment_batch(k1, batch["image"], recipe), augment_batch(k2, batch["image"], recipe)

  def loss(self, model, batch, method_state, key, step):
    view1, view2 = self.make_views(batch, key)
    n = view1.shape[0]
    # One forward pass over both views: batch norm sees the 2N images together, as solo-learn.
    z, _ = model(jnp.concatenate([view1, view2], axis=0), train=True)
    loss, aux = nt_xent_loss(z[:n], z[n:], temperature=self.config.method.temperature)
    return loss, aux, method_state

  def features(self, model, images) -> jax.Array:
    """Frozen, evaluation-mode encoder features [B, D] of raw (uint8 or [0,1]) images."""
    return model.encode(eval_transform(images, self.config.augment), train=False)

  def validate_batch(self, batch, num_devices: int) -> None:
    validate_image_batch(batch, channels=self.config.model.in_channels, num_devices=num_devices)
