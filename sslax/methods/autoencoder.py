"""Denoising and inpainting autoencoders: a conv encoder-decoder rebuilds the clean image.

Vincent, Larochelle, Bengio, Manzagol, "Extracting and Composing Robust
Features with Denoising Autoencoders", ICML 2008: the input is corrupted
(`method.corruption`: 'gaussian' additive noise of std `method.noise_std`,
or 'masking' noise zeroing each element with probability
`method.mask_fraction`) and the squared error to the clean image is
minimized over every pixel.

Pathak, Krahenbuhl, Donahue, Darrell, Efros, "Context Encoders: Feature
Learning by Inpainting", CVPR 2016 (`method.corruption='center'`): the
centre square of side H / 2 is removed (filled with the mean), except a
band of `method.overlap` pixels along its border; the network predicts the
whole centre square and the squared error there weights the band
`method.overlap_weight` (10) times the interior, as pathak22/context-encoder.
Only the reconstruction term is implemented: the paper's adversarial term
(weight 0.001) needs a discriminator and a second optimizer, which the one
train step of the library does not have; the paper reports features from
the reconstruction loss alone as well (its Table 2, "L2").

The encoder is the library's ResNet (`model.name`, its pooled output the
features the probes read, the same network as every CIFAR method's
random-init row); the decoder upsamples the last stage (nearest x2, 3x3
convolution, batch norm, ReLU) back to the input and ends in a 3x3
convolution to the image channels, in the input normalization.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.augment.corrupt import CORRUPTIONS, corrupt
from sslax.config import check_config_value
from sslax.data.modality import Images
from sslax.eval import KNN, HeldoutMetrics, LinearProbe, real_rows
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.eval.reconstruction import Reconstructions
from sslax.losses.masked_image import center_box, context_encoder_loss, denoising_loss
from sslax.methods.base import Method, MethodCard, register
from sslax.methods.two_view import image_inputs, resnet_stage_features
from sslax.models import RESNET_NAMES, build_encoder
from sslax.models.resnet import _bn, _conv


class UpBlock(nnx.Module):
  """Nearest-neighbour x2 upsampling, 3x3 convolution, batch norm, ReLU."""

  def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
    self.conv, self.bn = _conv(cin, cout, 3, 1, rngs, None), _bn(cout, rngs)

  def __call__(self, x, train: bool):
    b, h, w, c = x.shape
    x = jax.image.resize(x, (b, 2 * h, 2 * w, c), method="nearest")
    return jax.nn.relu(self.bn(self.conv(x), use_running_average=not train))


class AutoencoderNet(nnx.Module):
  """A ResNet encoder and a decoder from its last stage back to the image: `(reconstruction
  [B, H, W, C], encoder features)`."""

  def __init__(self, model_config, image_size: int, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    channels = int(model_config.in_channels)
    probe = jnp.zeros((1, image_size, image_size, channels))
    last = jax.eval_shape(lambda: self.encoder(probe, train=False)[1][f"stage{len(self.encoder.stages)}"])
    steps = int(round(math.log2(image_size / last.shape[1])))
    blocks, c = [], last.shape[-1]
    for _ in range(steps):
      blocks.append(UpBlock(c, max(c // 2, 16), rngs=rngs))
      c = max(c // 2, 16)
    self.decoder = nnx.List(blocks)
    self.out = nnx.Conv(c, channels, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, train: bool = True):
    _, features = self.encoder(images, train=train)
    x = features[f"stage{len(self.encoder.stages)}"]
    for block in self.decoder:
      x = block(x, train)
    return self.out(x).astype(jnp.float32), features


@register("autoencoder")
class Autoencoder(Method):
  """Denoising / inpainting autoencoder on the shared train step; see
  `experiments/denoising_ae_cifar10.py` and `experiments/context_encoder_cifar10.py`."""
  card = MethodCard(
      family="masked prediction",
      paper="Vincent et al. 2008, [Extracting and Composing Robust Features with Denoising Autoencoders]"
            "(https://doi.org/10.1145/1390156.1390294); Pathak et al. 2016, [Context Encoders]"
            "(https://arxiv.org/abs/1604.07379)",
      objective="squared error of the decoder's image to the clean input (denoising), or over the "
                "removed centre with its border band weighted 10x (context encoder)",
      loss="sslax.losses.masked_image.context_encoder_loss",
      reference="pathak22/context-encoder `train.lua` (`wtl2Matrix`, `overlapPred`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_masked_image.py::test_context_encoder_loss_weights_the_overlap_band",
             "tests/test_masked_image.py::test_denoising_loss_and_corruptions_written_out"),
      results=("Every method on CIFAR-10", "random init", "Context encoder", "Denoising autoencoder"))

  @property
  def inputs(self) -> Images:
    return image_inputs(self.config)

  def check_config(self):
    c = self.config
    check_config_value(c, "model.name", lambda v: v in RESNET_NAMES, f"a ResNet (one of {list(RESNET_NAMES)})")
    check_config_value(c, "method.corruption", lambda v: v in CORRUPTIONS, f"one of {list(CORRUPTIONS)}")
    check_config_value(c, "method.noise_std", lambda v: v >= 0, "a non-negative number")
    check_config_value(c, "method.mask_fraction", lambda v: 0 <= v < 1, "a number in [0, 1)")
    size = tuple(c.augment.crop_size)
    check_config_value(c, "augment.crop_size", lambda v: len(v) == 2 and v[0] == v[1] and v[0] % 4 == 0,
                       "a square crop whose side is a multiple of 4 (the centre square is half of it)")
    check_config_value(c, "method.overlap", lambda v: isinstance(v, int) and 0 <= v < size[0] // 4,
                       f"an integer in [0, {size[0] // 4}) (less than half the centre square)")
    check_config_value(c, "method.overlap_weight", lambda v: v > 0, "a positive number")

  def build_model(self, rngs: nnx.Rngs) -> AutoencoderNet:
    return AutoencoderNet(self.config.model, int(self.config.augment.crop_size[0]), rngs=rngs)

  def _corrupt(self, key, clean):
    m = self.config.method
    return corrupt(key, clean, m.corruption, noise_std=m.noise_std, mask_fraction=m.mask_fraction,
                   overlap=m.overlap)

  def _per_image_loss(self, recon, clean):
    """[B] the objective of each image; `loss` is their mean (every image has as many elements)."""
    m = self.config.method
    if m.corruption != "center":
      return jax.vmap(lambda r, c: denoising_loss(r[None], c[None]))(recon, clean)
    r0, r1 = center_box(clean.shape[1])
    per = jax.vmap(lambda p, t: context_encoder_loss(p[None], t[None], overlap=m.overlap,
                                                     overlap_weight=m.overlap_weight))
    return per(recon[:, r0:r1, r0:r1], clean[:, r0:r1, r0:r1])

  def loss(self, model, batch, method_state, key, step, target=None):
    k_aug, k_noise = jax.random.split(key)
    clean = augment_batch(k_aug, batch["image"], self.config.augment)
    recon, features = model(self._corrupt(k_noise, clean), train=True)
    loss = jnp.mean(self._per_image_loss(recon, clean))
    return loss, collapse_metrics(features["pooled"]), method_state

  def features(self, model, inputs) -> jax.Array:
    """Frozen encoder features [B, D] of the clean evaluation view."""
    return model.encode(eval_transform(inputs["image"], self.config.augment), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    """{"stage1".."stageN"}: each stage's output averaged over its positions."""
    return resnet_stage_features(model.encoder, eval_transform(inputs["image"], self.config.augment))

  def heldout(self, model, inputs, key) -> dict:
    """{"reconstruction_loss": (sum over images, images)} on the eval views, corrupted from `key`;
    padding rows (all zeros) are not counted."""
    clean = eval_transform(inputs["image"], self.config.augment)
    recon, _ = model(self._corrupt(key, clean), train=False)
    real = real_rows(inputs["image"])
    return {"reconstruction_loss": (jnp.sum(self._per_image_loss(recon, clean) * real), jnp.sum(real))}

  def reconstruct(self, model, inputs, key) -> dict[str, jax.Array]:
    """{"input", "corrupted", "reconstruction"} [B, H, W, C] in [0, 1]; the context encoder's
    reconstruction is the input with the predicted centre pasted in."""
    aug = self.config.augment
    clean = eval_transform(inputs["image"], aug)
    noisy = self._corrupt(key, clean)
    recon, _ = model(noisy, train=False)
    if self.config.method.corruption == "center":
      r0, r1 = center_box(clean.shape[1])
      recon = clean.at[:, r0:r1, r0:r1].set(recon[:, r0:r1, r0:r1])
    mean, std = jnp.asarray(aug.mean), jnp.asarray(aug.std)
    to_pixels = lambda x: x * std + mean  # noqa: E731
    return {"input": to_pixels(clean), "corrupted": to_pixels(noisy), "reconstruction": to_pixels(recon)}

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(), HeldoutMetrics(), Reconstructions())
