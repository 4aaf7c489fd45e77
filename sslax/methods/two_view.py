"""What the two-view image methods share (SimCLR, BYOL, SimSiam, MoCo, VICReg, Barlow Twins, DINO):
their inputs, the encoder-projector-predictor network, the two augmented views, the EMA target."""
from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.config import check_config_value, is_positive_int
from sslax.data.modality import Images
from sslax.eval import KNN, LinearProbe
from sslax.eval.layer_probe import LayerProbe
from sslax.methods.base import Method
from sslax.models import MLPHead, build_encoder
from sslax.optim import cosine_tau_schedule


def image_inputs(config, min_side: int = 1) -> Images:
  """Images of `model.in_channels` channels, resized to `data.image_size` when it is set."""
  size = config.data.get("image_size")
  return Images(channels=int(config.model.in_channels), image_size=None if size is None else tuple(size),
                dataset=config.data.get("name", ""), min_side=min_side)


class SiameseNet(nnx.Module):
  """Encoder -> projector [-> predictor], the network of SimCLR, BYOL, SimSiam, MoCo, VICReg, Barlow Twins.

  `__call__` gives the projection `z` and the encoder's features; `predict(z)`
  the predictor output (identity when the config has no predictor).
  """

  def __init__(self, model_config, projector_config, predictor_config=None, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.projector = MLPHead(self.encoder.num_features, projector_config.hidden_dim, projector_config.out_dim,
                             num_layers=projector_config.num_layers, batch_norm=projector_config.batch_norm,
                             last_batch_norm=projector_config.get("last_batch_norm", False), rngs=rngs)
    use_predictor = predictor_config is not None and predictor_config.get("enabled", True)
    self.predictor = (MLPHead(projector_config.out_dim, predictor_config.hidden_dim, projector_config.out_dim,
                              num_layers=predictor_config.get("num_layers", 2), batch_norm=True, rngs=rngs)
                      if use_predictor else None)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, train: bool = True):
    h, features = self.encoder(images, train=train)
    z, _ = self.projector(h, train=train)
    return z, features

  def predict(self, z: jax.Array, train: bool = True) -> jax.Array:
    return z if self.predictor is None else self.predictor(z, train=train)[0]


def view_recipe(config, view: int) -> ml_collections.ConfigDict:
  """The augmentation recipe of view 1 or 2: `augment`, with `augment_view2` overriding view 2
  (BYOL's asymmetric blur / solarization)."""
  if view == 1 or not config.get("augment_view2"):
    return config.augment
  recipe = ml_collections.ConfigDict(config.augment.to_dict())
  recipe.update(config.augment_view2.to_dict())
  return recipe


def local_crop_recipe(config) -> ml_collections.ConfigDict:
  """Multi-crop's low-resolution crops (DINO, SwAV): view 1's recipe (`augment`) at
  `method.local_crop_size` and `method.local_crop_scale`."""
  recipe = ml_collections.ConfigDict(config.augment.to_dict())
  recipe.crop_size = tuple(config.method.local_crop_size)
  recipe.crop_scale = tuple(config.method.local_crop_scale)
  return recipe


def local_crops(keys: jax.Array, images: jax.Array, config) -> jax.Array:
  """One low-resolution crop of every image per key of `keys` [L, 2]: [L * N, h, w, C], crop by
  crop (crop l of image n is row l * N + n)."""
  recipe = local_crop_recipe(config)
  return jnp.concatenate([augment_batch(k, images, recipe) for k in keys], axis=0)


def resnet_stage_features(encoder, images: jax.Array) -> dict[str, jax.Array]:
  """{"stage1".."stageN"}: each ResNet stage's output of normalized `images`, averaged over its
  positions (frozen, evaluation mode), for `LayerProbe`."""
  if not hasattr(encoder, "stages"):
    raise ValueError(f"model.name: per-stage features need a ResNet, got {type(encoder).__name__}")
  _, f = encoder(images, train=False)
  return {f"stage{i + 1}": jnp.mean(f[f"stage{i + 1}"], axis=(1, 2)).astype(jnp.float32)
          for i in range(len(encoder.stages))}


class TwoViewMethod(Method):
  """Two augmented views of each image through a SiameseNet; subclasses define `loss`."""

  # False for methods with a head of their own instead of the `projector` section (DINO)
  uses_projector: ClassVar[bool] = True

  def __post_init__(self):
    if self.uses_projector:
      for key in ("hidden_dim", "out_dim", "num_layers"):
        check_config_value(self.config, f"projector.{key}", is_positive_int, "a positive integer")
    super().__post_init__()

  @property
  def inputs(self) -> Images:
    return image_inputs(self.config)

  def build_model(self, rngs: nnx.Rngs) -> SiameseNet:
    return SiameseNet(self.config.model, self.config.projector, self.config.get("predictor"), rngs=rngs)

  def make_views(self, batch, key):
    k1, k2 = jax.random.split(key)
    images = batch["image"]
    return augment_batch(k1, images, view_recipe(self.config, 1)), augment_batch(k2, images, view_recipe(self.config, 2))

  def online_and_views(self, model, batch, key):
    """Both views through the online network in one pass (batch norm sees the 2N images, as
    solo-learn's synchronized BN over both views). Returns (x [2N, ...], z [2N, D], n)."""
    v1, v2 = self.make_views(batch, key)
    x = jnp.concatenate([v1, v2], axis=0)
    z, _ = model(x, train=True)
    return x, z, v1.shape[0]

  def features(self, model, inputs) -> jax.Array:
    """Frozen, evaluation-mode encoder features [B, D] of raw (uint8 or [0,1]) images `inputs["image"]`."""
    return model.encode(eval_transform(inputs["image"], self.config.augment), train=False)

  def train_features(self, model, inputs, key) -> jax.Array:
    """Encoder features [B, D] of one augmented view (`augment`), batch norm in training mode."""
    return model.encode(augment_batch(key, inputs["image"], view_recipe(self.config, 1)), train=True)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    """{"stage1".."stageN"} of a ResNet encoder on the evaluation view (`resnet_stage_features`)."""
    return resnet_stage_features(model.encoder, eval_transform(inputs["image"], self.config.augment))

  def evaluators(self):
    """kNN and the linear probe of the pooled encoder, and with a ResNet encoder the probe of each
    stage (`LayerProbe`): where in the network the method's features are best."""
    return (KNN(), LinearProbe(), *stage_probe(self.config))


def stage_probe(config) -> tuple:
  """(LayerProbe(),) for a ResNet encoder (its stages are named) unless `eval.layer_probe` is off;
  () for a ViT."""
  on = config.eval.get("layer_probe", True) and str(config.model.name).startswith("resnet")
  return (LayerProbe(),) if on else ()


class MomentumMixin:
  """An EMA target on BYOL's cosine schedule from `method.base_tau` to `method.final_tau`."""

  config: Any

  def check_momentum(self):
    check_config_value(self.config, "method.base_tau", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    check_config_value(self.config, "method.final_tau", lambda v: 0 <= v <= 1, "a number in [0, 1]")

  def ema_schedule(self, total_steps: int):
    return cosine_tau_schedule(self.config.method.base_tau, total_steps, self.config.method.final_tau)
