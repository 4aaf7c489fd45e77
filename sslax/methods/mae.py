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

from sslax.augment import augment_batch, eval_transform
from sslax.augment.patch_masks import num_visible, random_patch_mask
from sslax.config import check_config_value
from sslax.data.modality import Images
from sslax.eval import KNN, HeldoutMetrics, LinearProbe
from sslax.eval.collapse import collapse_metrics
from sslax.eval.reconstruction import Reconstructions
from sslax.losses.masked_image import mae_loss, normalized_pixel_targets, patchify, unpatchify
from sslax.methods.base import Method, MethodCard, register
from sslax.models import VIT_NAMES, build_encoder
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
class MAE(Method):
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

  @property
  def inputs(self) -> Images:
    size = self.config.data.get("image_size")
    return Images(channels=int(self.config.model.in_channels), image_size=None if size is None else tuple(size),
                  dataset=self.config.data.get("name", ""))

  def check_config(self):
    c = self.config
    check_config_value(c, "model.name", lambda v: v in VIT_NAMES, f"a ViT (one of {list(VIT_NAMES)})")
    check_config_value(c, "method.mask_ratio", lambda v: 0 < v < 1, "a number in (0, 1)")
    check_config_value(c, "method.decoder_dim", lambda v: isinstance(v, int) and v > 0 and v % 4 == 0,
                       "a positive multiple of 4 (sin-cos positions)")
    check_config_value(c, "method.decoder_depth", lambda v: isinstance(v, int) and v >= 1, "a positive integer")
    check_config_value(c, "method.decoder_heads", lambda v: isinstance(v, int) and v >= 1
                       and c.method.decoder_dim % v == 0, "a positive divisor of method.decoder_dim")
    check_config_value(c, "method.feature", lambda v: v in ("patch_mean", "cls"), "'patch_mean' or 'cls'")
    check_config_value(c, "augment.crop_size", lambda v: tuple(v) == (c.model.image_size,) * 2,
                       f"the model's input size ({c.model.image_size}, {c.model.image_size}) (model.image_size)")
    grid = c.model.image_size // c.model.patch_size
    check_config_value(c, "method.mask_ratio", lambda v: num_visible(grid * grid, v) >= 1,
                       f"a ratio that leaves at least one of the {grid * grid} patches visible")

  def build_model(self, rngs: nnx.Rngs) -> MAENet:
    return MAENet(self.config.model, self.config.method, rngs=rngs)

  def _forward(self, model: MAENet, views: jax.Array, key: jax.Array):
    grid = model.encoder.grid
    keep, restore, mask = random_patch_mask(key, views.shape[0], grid * grid, self.config.method.mask_ratio)
    pred, features = model(views, keep, restore)
    return pred, features, mask

  def loss(self, model, batch, method_state, key, step, target=None):
    k_aug, k_mask = jax.random.split(key)
    views = augment_batch(k_aug, batch["image"], self.config.augment)
    pred, features, mask = self._forward(model, views, k_mask)
    patches = patchify(views, model.encoder.patch_size)
    loss = mae_loss(pred, patches, mask, norm_pix=self.config.method.norm_pix_loss)
    return loss, {"mask_ratio": jnp.mean(mask), **collapse_metrics(features["patch_mean"])}, method_state

  def _pool(self, features) -> jax.Array:
    return features[self.config.method.feature]

  def features(self, model, inputs) -> jax.Array:
    """Frozen features [B, D] of the whole (unmasked) evaluation view."""
    return self._pool(model.encoder(eval_transform(inputs["image"], self.config.augment), train=False)[1])

  def train_features(self, model, inputs, key) -> jax.Array:
    """`features` of the pretraining augmentation (crop and flip): fine-tuning's view."""
    return self._pool(model.encoder(augment_batch(key, inputs["image"], self.config.augment), train=True)[1])

  def heldout(self, model, inputs, key) -> dict:
    """{"reconstruction_loss": (sum over images, images)} of the eval views under random masks."""
    views = eval_transform(inputs["image"], self.config.augment)
    pred, _, mask = self._forward(model, views, key)
    target = patchify(views, model.encoder.patch_size)
    if self.config.method.norm_pix_loss:
      target = normalized_pixel_targets(target)
    per_image = jnp.sum(jnp.mean(jnp.square(pred - target), -1) * mask, 1) / jnp.sum(mask, 1)
    real = jnp.any(inputs["image"] != 0, axis=(1, 2, 3)).astype(jnp.float32)  # padding rows are zeros
    return {"reconstruction_loss": (jnp.sum(per_image * real), jnp.sum(real))}

  def reconstruct(self, model, inputs, key) -> dict[str, jax.Array]:
    """{"input", "masked", "reconstruction"} [B, H, W, C] in [0, 1] for `sslax.eval.Reconstructions`;
    with normalized-pixel targets the predictions are mapped back with each true patch's mean and
    variance (as the reference's visualization), the visible patches pasted in."""
    aug = self.config.augment
    views = eval_transform(inputs["image"], aug)
    pred, _, mask = self._forward(model, views, key)
    p, grid = model.encoder.patch_size, model.encoder.grid
    patches = patchify(views, p)
    if self.config.method.norm_pix_loss:
      mean = jnp.mean(patches, -1, keepdims=True)
      std = jnp.sqrt(jnp.var(patches, -1, keepdims=True, ddof=1) + 1e-6)
      pred = pred * std + mean
    m = mask[..., None]
    mean, std = jnp.asarray(aug.mean), jnp.asarray(aug.std)
    to_pixels = lambda x: unpatchify(x, p, grid) * std + mean  # noqa: E731
    hidden = unpatchify(jnp.broadcast_to(m, patches.shape), p, grid) > 0
    return {"input": to_pixels(patches), "masked": jnp.where(hidden, 0.5, to_pixels(patches)),
            "reconstruction": to_pixels(jnp.where(m > 0, pred, patches))}

  def evaluators(self):
    return (KNN(), LinearProbe(), HeldoutMetrics(), Reconstructions())
