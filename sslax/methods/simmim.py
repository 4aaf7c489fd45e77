"""SimMIM: mask tokens replace large square regions of patches; a linear head predicts their pixels.

Xie, Zhang, Cao, Lin, Bao, Yao, Dai, Hu, "SimMIM: a Simple Framework for
Masked Image Modeling", CVPR 2022, as microsoft/SimMIM `models/simmim.py`:

- the mask is drawn per image over cells of `method.mask_patch_size` pixels
  (larger than the encoder's patches: 32 px cells over 16 px patches in the
  paper), ceil(cells x `method.mask_ratio`) cells masked, on device from the
  step key;
- the encoder sees every patch; masked patches' embeddings are replaced by
  one learned mask token (N(0, 0.02)) before the position embeddings;
- a linear head (the reference's 1x1 convolution and pixel shuffle) maps
  each output token to its patch's p * p * C pixels;
- the loss is l1 on the masked pixels of the (normalized) input only.

The reference's ViT uses relative position bias, which the library ViT
lacks; the configs give it MAE's fixed sin-cos positions instead
(`model.pos_embed='sincos'`, frozen), so that MAE and SimMIM start from the
same network and share one random-init baseline. Frozen features for the
probes and fine-tuning: the unmasked image, pooled as `method.feature`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment import augment_batch
from sslax.augment.patch_masks import block_patch_mask
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.masked_image import patchify, simmim_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.masked_image import MaskedImageMethod
from sslax.models import build_encoder


class SimMIMNet(nnx.Module):
  """A ViT encoder, its mask token and the linear pixel head."""

  def __init__(self, model_config, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    dim, p, c = self.encoder.num_features, self.encoder.patch_size, self.encoder.in_channels
    self.mask_token = nnx.Param(nnx.initializers.truncated_normal(stddev=0.02)(rngs.params(), (dim,)))
    self.head = nnx.Linear(dim, p * p * c, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, mask: jax.Array):
    """images [B, H, W, C], mask [B, N] (1 = masked) -> (pixels [B, N, p * p * C], features)."""
    tokens = self.encoder.embed(images, mask=mask > 0, mask_token=self.mask_token[...])
    _, features = self.encoder.encode_tokens(tokens)
    return self.head(features["tokens"][:, 1:]), features


@register("simmim")
class SimMIM(MaskedImageMethod):
  """SimMIM on the shared train step; see `experiments/simmim_cifar10.py`."""
  card = MethodCard(
      family="masked prediction",
      paper="Xie et al. 2022, [SimMIM: a Simple Framework for Masked Image Modeling]"
            "(https://arxiv.org/abs/2111.09886)",
      objective="l1 between a linear head's pixels and the input's, on the masked pixels only; masked "
                "patches enter the encoder as a learned mask token",
      loss="sslax.losses.masked_image.simmim_loss",
      reference="microsoft/SimMIM `models/simmim.py` (`MaskGenerator`, `SimMIM.forward`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_masked_image.py::test_simmim_loss_is_the_masked_l1_written_out",
             "tests/test_masked_image.py::test_simmim_masks_cover_whole_cells"),
      results=("Every method on CIFAR-10", "random init", "SimMIM"))

  def check_config(self):
    super().check_config()
    c = self.config
    p, size = c.model.patch_size, c.model.image_size
    check_config_value(c, "method.mask_patch_size", lambda v: isinstance(v, int) and v % p == 0 and size % v == 0,
                       f"a multiple of model.patch_size ({p}) that divides model.image_size ({size})")

  def build_model(self, rngs: nnx.Rngs) -> SimMIMNet:
    return SimMIMNet(self.config.model, rngs=rngs)

  def predict(self, model: SimMIMNet, views: jax.Array, key: jax.Array):
    m, enc = self.config.method, model.encoder
    mask = block_patch_mask(key, views.shape[0], enc.grid, m.mask_patch_size // enc.patch_size, m.mask_ratio)
    pred, features = model(views, mask)
    return pred, features, mask

  def per_image_loss(self, pred, targets, mask):
    l1 = jnp.mean(jnp.abs(pred - targets), -1)  # per patch: over its pixels and channels
    return jnp.sum(l1 * mask, 1) / jnp.sum(mask, 1)

  def loss(self, model, batch, method_state, key, step, target=None):
    k_aug, k_mask = jax.random.split(key)
    views = augment_batch(k_aug, batch["image"], self.config.augment)
    pred, features, mask = self.predict(model, views, k_mask)
    loss = simmim_loss(pred, patchify(views, model.encoder.patch_size), mask, channels=views.shape[-1])
    return loss, {"mask_ratio": jnp.mean(mask), **collapse_metrics(features["patch_mean"])}, method_state
