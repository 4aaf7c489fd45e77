"""What a method contributes to the shared train step, and the two-view methods' common part.

A method is a small object of pure functions; it never owns a loop:

- `build_model(rngs) -> nnx.Module`: encoder plus heads; `model.encode(x)`
  gives frozen features for evaluation.
- `init_state(model, key) -> pytree`: extra state carried in
  `TrainState.method_state` (MoCo's queue, DINO's center); `{}` if none.
- `ema_schedule(total_steps) -> tau schedule | None`: when not None, the
  optimizer gets an `ema_target` transform and `loss` receives the target
  network (EMA of the online parameters) as `target`.
- `loss(model, batch, method_state, key, step, target=None) ->
  (loss, aux, method_state)`; aux holds `collapse/*` metrics of the online
  embeddings (`sslax.eval.collapse_metrics`).
- `validate_batch(batch, num_devices)`: raises ValueError for inputs it
  cannot take, before anything is compiled.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.config import check_config_value
from sslax.models import MLPHead, build_encoder
from sslax.optim import cosine_tau_schedule


def validate_image_batch(batch, *, channels: int, num_devices: int, min_side: int = 1) -> None:
  """Checks a host batch {"image": [B, H, W, C] uint8 or float} against what a vision method needs.

  Raises ValueError naming the field, the expected and the actual value.
  """
  if "image" not in batch:
    raise ValueError(f"batch: expected an 'image' entry, got keys {sorted(batch)}")
  image = batch["image"]
  shape, dtype = tuple(image.shape), np.dtype(image.dtype)
  if len(shape) != 4:
    raise ValueError(f"batch.image: expected rank 4 [B, H, W, C], got rank {len(shape)} shape {shape}")
  if shape[-1] != channels:
    raise ValueError(f"batch.image: expected {channels} channels (model.in_channels), got {shape[-1]} (shape {shape})")
  if not (dtype == np.uint8 or np.issubdtype(dtype, np.floating)):
    raise ValueError(f"batch.image: expected dtype uint8 or float, got {dtype}")
  if shape[0] == 0:
    raise ValueError("batch.image: expected a non-empty batch, got batch size 0")
  if shape[0] % num_devices:
    raise ValueError(f"batch.image: expected a batch size divisible by the {num_devices} devices, got {shape[0]}")
  if min(shape[1:3]) < min_side:
    raise ValueError(f"batch.image: expected height and width >= {min_side}, got {shape[1:3]}")


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


@dataclasses.dataclass(frozen=True)
class TwoViewMethod:
  """Two augmented views of each image through a SiameseNet; subclasses define `loss`."""

  config: ml_collections.ConfigDict

  name = "two_view"
  input_keys = ("image",)

  def __post_init__(self):
    self.check_config()

  def check_config(self) -> None:
    """Method-specific config checks; each failure names the key, the expected and the actual value."""

  def build_model(self, rngs: nnx.Rngs) -> SiameseNet:
    return SiameseNet(self.config.model, self.config.projector, self.config.get("predictor"), rngs=rngs)

  def init_state(self, model, key) -> Any:
    return {}

  def ema_schedule(self, total_steps: int) -> Callable | None:
    return None

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

  def validate_batch(self, batch, num_devices: int) -> None:
    validate_image_batch(batch, channels=self.config.model.in_channels, num_devices=num_devices)


class MomentumMixin:
  """An EMA target on BYOL's cosine schedule from `method.base_tau` to `method.final_tau`."""

  def check_momentum(self):
    check_config_value(self.config, "method.base_tau", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    check_config_value(self.config, "method.final_tau", lambda v: 0 <= v <= 1, "a number in [0, 1]")

  def ema_schedule(self, total_steps: int):
    return cosine_tau_schedule(self.config.method.base_tau, total_steps, self.config.method.final_tau)
