"""MAE: a ViT encoder sees a random quarter of the patches; a narrow decoder rebuilds the rest.

He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable
Vision Learners", CVPR 2022, as facebookresearch/mae `models_mae.py`:

- per image, `method.mask_ratio` (0.75) of the patches are masked by ranking
  uniform noise drawn on device from the step key; the encoder runs on the
  visible patches only, gathered with one take (no mask tokens in the
  encoder, so it costs 1 - mask_ratio of a full pass);
- the decoder embeds the encoder's tokens to `method.decoder_dim`, appends
  one shared mask token per masked patch, puts every token back in raster
  order, adds its own fixed sin-cos positions, runs `method.decoder_depth`
  pre-norm blocks and predicts each patch's p * p * C pixels;
- the loss is the per-patch MSE on masked patches only, against targets
  normalized per patch (`method.norm_pix_loss`, the paper's default);
- position embeddings of encoder and decoder are the fixed 2-D sin-cos
  tables (`model.pos_embed='sincos'`, frozen through `optim.freeze`), the
  decoder's linear layers Xavier-uniform, the mask token N(0, 0.02).

The encoder is the library's ViT (`sslax.models.vit`), initialized as it is
for every ViT method (truncated normal 0.02) rather than MAE's Xavier, so
the random-init baseline is the same network. Frozen features for the
probes and fine-tuning: the full, unmasked image through the encoder,
pooled as `method.feature` says ('patch_mean', MAE's fine-tuning
`global_pool`, or 'cls').
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment import augment_batch
from sslax.augment.patch_masks import num_visible, random_patch_mask
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses.masked_image import mae_loss, normalized_pixel_targets, patchify
from sslax.methods.base import MethodCard, register
from sslax.methods.masked_image import MaskedImageMethod
from sslax.models import build_encoder
from sslax.models.vit import Block, sincos_pos_embed

_xavier = nnx.initializers.xavier_uniform()


def _linear(a, b, rngs):
  return nnx.Linear(a, b, kernel_init=_xavier, rngs=rngs)


class MAEDecoder(nnx.Module):
  """Encoder tokens of the visible patches -> pixel predictions of every patch [B, N, p * p * C]."""

  def __init__(self, encoder_dim: int, dim: int, depth: int, num_heads: int, grid: int, patch_pixels: int, *,
               rngs: nnx.Rngs):
    self.grid = grid
    self.embed = _linear(encoder_dim, dim, rngs)
    self.mask_token = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, 1, dim)))
    self.pos_embed = nnx.Param(jnp.asarray(sincos_pos_embed(dim, grid))[None])
    self.blocks = nnx.List([Block(dim, num_heads, 4.0, rngs=rngs) for _ in range(depth)])
    for block in self.blocks:  # the reference's `_init_weights`: Xavier-uniform linear layers
      for layer in (block.attn.qkv, block.attn.proj, block.fc1, block.fc2):
        layer.kernel[...] = _xavier(rngs.params(), layer.kernel.shape)
    self.norm = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
    self.pred = _linear(dim, patch_pixels, rngs)

  def __call__(self, tokens: jax.Array, restore: jax.Array) -> jax.Array:
    """tokens [B, 1 + K, encoder_dim] (class token first), restore [B, N] -> [B, N, p * p * C]."""
    x = self.embed(tokens)
    b, n = restore.shape
    masked = jnp.broadcast_to(self.mask_token[...].astype(x.dtype), (b, n - (x.shape[1] - 1), x.shape[-1]))
    patches = jnp.concatenate([x[:, 1:], masked], axis=1)  # [visible..., masked...]
    patches = jnp.take_along_axis(patches, restore[..., None], axis=1)  # raster order
    x = jnp.concatenate([x[:, :1], patches], axis=1) + self.pos_embed[...]
    for block in self.blocks:
      x = block(x)
    return self.pred(self.norm(x))[:, 1:]


class MAENet(nnx.Module):
  """A ViT encoder and MAE's decoder."""

  def __init__(self, model_config, method_config, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    p, c = self.encoder.patch_size, self.encoder.in_channels
    self.decoder = MAEDecoder(self.encoder.num_features, method_config.decoder_dim, method_config.decoder_depth,
                              method_config.decoder_heads, self.encoder.grid, p * p * c, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, keep: jax.Array, restore: jax.Array):
    """images [B, H, W, C], keep [B, K], restore [B, N] -> (pixel predictions [B, N, P], encoder
    features of the visible patches)."""
    tokens = self.encoder.embed(images)
    visible = jnp.take_along_axis(tokens, keep[..., None], axis=1)
    _, features = self.encoder.encode_tokens(visible)
    return self.decoder(features["tokens"], restore), features


@register("mae")
class MAE(MaskedImageMethod):
  """Masked autoencoder on the shared train step; see `experiments/mae_cifar10.py`."""
  card = MethodCard(
      family="masked prediction",
      paper="He et al. 2022, [Masked Autoencoders Are Scalable Vision Learners](https://arxiv.org/abs/2111.06377)",
      objective="mean squared error of the decoder's pixels to the per-patch normalized pixels, on the "
                "75% of patches the encoder never saw",
      loss="sslax.losses.masked_image.mae_loss",
      reference="facebookresearch/mae `models_mae.py` (`random_masking`, `forward_loss`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_masked_image.py::test_mae_loss_is_the_normalized_pixel_mse_written_out",
             "tests/test_masked_image.py::test_visible_patch_gather_equals_the_dense_masked_encoder"),
      results=("Every method on CIFAR-10", "random init", "MAE"))

  def check_config(self):
    super().check_config()
    c = self.config
    check_config_value(c, "method.decoder_dim", lambda v: isinstance(v, int) and v > 0 and v % 4 == 0,
                       "a positive multiple of 4 (sin-cos positions)")
    check_config_value(c, "method.decoder_depth", lambda v: isinstance(v, int) and v >= 1, "a positive integer")
    check_config_value(c, "method.decoder_heads", lambda v: isinstance(v, int) and v >= 1
                       and c.method.decoder_dim % v == 0, "a positive divisor of method.decoder_dim")
    grid = c.model.image_size // c.model.patch_size
    check_config_value(c, "method.mask_ratio", lambda v: num_visible(grid * grid, v) >= 1,
                       f"a ratio that leaves at least one of the {grid * grid} patches visible")

  def build_model(self, rngs: nnx.Rngs) -> MAENet:
    return MAENet(self.config.model, self.config.method, rngs=rngs)

  def predict(self, model: MAENet, views: jax.Array, key: jax.Array):
    grid = model.encoder.grid
    keep, restore, mask = random_patch_mask(key, views.shape[0], grid * grid, self.config.method.mask_ratio)
    pred, features = model(views, keep, restore)
    return pred, features, mask

  def targets(self, patches):
    return normalized_pixel_targets(patches) if self.config.method.norm_pix_loss else patches

  def per_image_loss(self, pred, targets, mask):
    return jnp.sum(jnp.mean(jnp.square(pred - targets), -1) * mask, 1) / jnp.sum(mask, 1)

  def loss(self, model, batch, method_state, key, step, target=None):
    k_aug, k_mask = jax.random.split(key)
    views = augment_batch(k_aug, batch["image"], self.config.augment)
    pred, features, mask = self.predict(model, views, k_mask)
    patches = patchify(views, model.encoder.patch_size)
    loss = mae_loss(pred, patches, mask, norm_pix=self.config.method.norm_pix_loss)
    return loss, {"mask_ratio": jnp.mean(mask), **collapse_metrics(features["patch_mean"])}, method_state

  def to_patch_pixels(self, pred, patches):
    """Normalized-pixel predictions mapped back with each true patch's mean and variance, as the
    reference's visualization does."""
    if not self.config.method.norm_pix_loss:
      return pred
    mean = jnp.mean(patches, -1, keepdims=True)
    return pred * jnp.sqrt(jnp.var(patches, -1, keepdims=True, ddof=1) + 1e-6) + mean
