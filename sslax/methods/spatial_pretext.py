"""What the spatial pretext tasks on tiles of one image share (jigsaw puzzles, relative patch position):
their inputs, the square-crop check, and the probes' view of the whole image, standardized per image
as the tiles were (`sslax.augment.tiles.standardize`)."""
from __future__ import annotations

import jax

from sslax.augment import augment_batch, eval_transform
from sslax.augment.tiles import standardize
from sslax.config import check_config_value
from sslax.eval import KNN, HeldoutMetrics, LinearProbe
from sslax.eval.layer_probe import LayerProbe
from sslax.methods.base import Method
from sslax.methods.two_view import image_inputs, resnet_stage_features


class SpatialPretext(Method):
  """Base of the tile methods: subclasses define `build_model`, `loss` and `heldout`."""

  @property
  def inputs(self):
    return image_inputs(self.config)

  def check_square_crop(self, grid: int) -> int:
    """Checks `augment.crop_size` is square; returns its cell side for a `grid` x `grid` grid."""
    check_config_value(self.config, "augment.crop_size", lambda v: len(v) == 2 and v[0] == v[1],
                       "a square crop (H == W)")
    return int(self.config.augment.crop_size[0]) // grid

  def view(self, key: jax.Array, images: jax.Array, train: bool) -> jax.Array:
    """The image the tiles are cut from: an augmented view (`augment`, from `key`) in training, the
    evaluation view otherwise."""
    return augment_batch(key, images, self.config.augment) if train else eval_transform(images, self.config.augment)

  def whole_image(self, inputs) -> jax.Array:
    """The evaluation view of `inputs["image"]`, standardized per image and channel."""
    return standardize(eval_transform(inputs["image"], self.config.augment))

  def features(self, model, inputs) -> jax.Array:
    """Frozen encoder features [B, D] of the whole evaluation view, standardized as the tiles."""
    return model.encode(self.whole_image(inputs), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    return resnet_stage_features(model.encoder, self.whole_image(inputs))

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(), HeldoutMetrics())
