"""What the masked-image methods share (`mae.py`, `simmim.py`): a ViT over images, features of the
unmasked image for the probes and fine-tuning, per-block features, the held-out loss and the
reconstructions drawn in the run's report.

A subclass gives `build_model` and `predict(model, views, key) -> (pixel predictions [B, N, P],
encoder features, mask [B, N])`, `targets(patches)` (what its loss compares with) and
`per_image_loss(pred, targets, mask)`; the rest is here.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.augment import augment_batch, eval_transform
from sslax.config import check_config_value
from sslax.data.modality import Images
from sslax.eval import KNN, HeldoutMetrics, LinearProbe, real_rows
from sslax.eval.layer_probe import LayerProbe
from sslax.eval.reconstruction import Reconstructions
from sslax.losses.masked_image import patchify, unpatchify
from sslax.methods.base import Method
from sslax.methods.two_view import image_inputs
from sslax.models import VIT_NAMES


class MaskedImageMethod(Method):
  """Base of MAE and SimMIM (module docstring)."""

  @property
  def inputs(self) -> Images:
    return image_inputs(self.config)

  def check_config(self):
    c = self.config
    check_config_value(c, "model.name", lambda v: v in VIT_NAMES, f"a ViT (one of {list(VIT_NAMES)})")
    check_config_value(c, "method.mask_ratio", lambda v: 0 < v < 1, "a number in (0, 1)")
    check_config_value(c, "method.feature", lambda v: v in ("patch_mean", "cls"), "'patch_mean' or 'cls'")
    size = c.model.image_size
    check_config_value(c, "augment.crop_size", lambda v: tuple(v) == (size, size),
                       f"the model's input size ({size}, {size}) (model.image_size)")

  def predict(self, model, views: jax.Array, key: jax.Array):
    raise NotImplementedError(f"{type(self).__name__}.predict")

  def targets(self, patches: jax.Array) -> jax.Array:
    """What the loss compares the predictions with: the patches themselves by default."""
    return patches

  def per_image_loss(self, pred, targets, mask) -> jax.Array:
    raise NotImplementedError(f"{type(self).__name__}.per_image_loss")

  def _encoder_features(self, model, inputs, key=None):
    images = inputs["image"]
    views = (eval_transform(images, self.config.augment) if key is None
             else augment_batch(key, images, self.config.augment))
    return model.encoder(views, train=key is not None)[1]

  def features(self, model, inputs) -> jax.Array:
    """Frozen features [B, D] of the whole (unmasked) evaluation view, pooled as `method.feature`."""
    return self._encoder_features(model, inputs)[self.config.method.feature]

  def train_features(self, model, inputs, key) -> jax.Array:
    """`features` of the pretraining augmentation (crop and flip): fine-tuning's view."""
    return self._encoder_features(model, inputs, key)[self.config.method.feature]

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    """{"block1".."blockL": each block's output averaged over the patches, "final": `features`}."""
    f = self._encoder_features(model, inputs)
    blocks = f["block_patch_means"]
    return {**{f"block{i + 1}": blocks[:, i] for i in range(blocks.shape[1])}, "final": f[self.config.method.feature]}

  def heldout(self, model, inputs, key) -> dict:
    """{"reconstruction_loss": (sum over images, images)}: the objective per image on the eval
    views under masks from `key`. Padding rows (all zeros) are not counted."""
    views = eval_transform(inputs["image"], self.config.augment)
    pred, _, mask = self.predict(model, views, key)
    per_image = self.per_image_loss(pred, self.targets(patchify(views, model.encoder.patch_size)), mask)
    real = real_rows(inputs["image"])
    return {"reconstruction_loss": (jnp.sum(per_image * real), jnp.sum(real))}

  def to_patch_pixels(self, pred: jax.Array, patches: jax.Array) -> jax.Array:
    """Predictions in the patches' space (MAE maps normalized-pixel predictions back)."""
    return pred

  def reconstruct(self, model, inputs, key) -> dict[str, jax.Array]:
    """{"input", "masked" (masked pixels grey), "reconstruction" (the visible patches pasted in)}
    [B, H, W, C] in [0, 1], for `sslax.eval.Reconstructions`."""
    aug = self.config.augment
    views = eval_transform(inputs["image"], aug)
    pred, _, mask = self.predict(model, views, key)
    p, grid = model.encoder.patch_size, model.encoder.grid
    patches = patchify(views, p)
    pred = self.to_patch_pixels(pred, patches)
    m = mask[..., None]
    mean, std = jnp.asarray(aug.mean), jnp.asarray(aug.std)
    to_pixels = lambda x: unpatchify(x, p, grid) * std + mean  # noqa: E731
    hidden = unpatchify(jnp.broadcast_to(m, patches.shape), p, grid) > 0
    return {"input": to_pixels(patches), "masked": jnp.where(hidden, 0.5, to_pixels(patches)),
            "reconstruction": to_pixels(jnp.where(m > 0, pred, patches))}

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(), HeldoutMetrics(), Reconstructions())
