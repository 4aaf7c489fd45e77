"""Colorization: the ab colour of every pixel, predicted from the lightness L alone.

Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016, as
richzhang/colorization: images go to CIE Lab on device (`sslax.augment.color`);
the encoder reads L only (`model.in_channels` = 1, L - 50 scaled by 1/50); a
head on stage `method.stage` predicts, at that stage's resolution (1/4 of the
input at stage 3 of a CIFAR-stem ResNet, the paper's output stride), a
distribution over the in-gamut ab bins of side `method.bin_size`; targets are
the area-averaged ab values soft-encoded over their 5 nearest bins, each pixel
weighted by its class-rebalancing weight (lambda `method.rebalance`).

The bin prior behind the weights is counted before step 0 by the `refresh`
hook over the first `method.prior_images` training images (the reference
counts it over ImageNet beforehand) and kept in `TrainState.method_state`, so
it is checkpointed and a resumed run reads the same weights.

The probes read the L-only encoder on the evaluation view's lightness.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.augment.color import ab_bins, as_rgb, lab_to_rgb, rgb_to_lab
from sslax.config import check_config_value, is_positive_int
from sslax.data.modality import Images
from sslax.data.pipeline import eval_batches
from sslax.eval import KNN, HeldoutMetrics, LinearProbe, real_rows
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.eval.reconstruction import Reconstructions
from sslax.losses.colorization import annealed_mean, colorization_loss, rebalance_weights, soft_encode
from sslax.methods.base import Method, MethodCard, register
from sslax.methods.two_view import resnet_stage_features
from sslax.models import RESNET_NAMES, build_encoder
from sslax.models.resnet import _bn, _conv


def lightness(lab: jax.Array) -> jax.Array:
  """[..., 3] Lab -> [..., 1] the encoder's input: (L - 50) / 50, in [-1, 1]."""
  return (lab[..., :1] - 50.0) / 50.0


def area_mean(x: jax.Array, size: int) -> jax.Array:
  """[B, H, W, C] -> [B, size, size, C], the mean over each (H / size) x (W / size) block."""
  b, h, w, c = x.shape
  return jnp.mean(x.reshape(b, size, h // size, size, w // size, c), axis=(2, 4))


class ColorizationNet(nnx.Module):
  """The L-only encoder and a 3x3 conv -> BN -> ReLU -> 1x1 conv head onto the Q bins, read at one
  stage: `(logits [B, h, w, Q], encoder features)`."""

  def __init__(self, model_config, stage: str, hidden: int, num_bins: int, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.stage = stage
    # each stage doubles the channels: stage i of N has num_features / 2^(N - i)
    channels = self.encoder.num_features // 2 ** (len(self.encoder.stages) - int(stage.removeprefix("stage")))
    self.conv = _conv(channels, hidden, 3, 1, rngs, None)
    self.bn = _bn(hidden, rngs)
    self.out = nnx.Conv(hidden, num_bins, (1, 1), rngs=rngs)

  def encode(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(x, train=train)[0]

  def __call__(self, x: jax.Array, train: bool = True):
    _, features = self.encoder(x, train=train)
    h = jax.nn.relu(self.bn(self.conv(features[self.stage]), use_running_average=not train))
    return self.out(h), features


@register("colorization")
class Colorization(Method):
  """Colorization on the shared train step; see `experiments/colorization_cifar10.py`."""
  card = MethodCard(
      family="pretext",
      paper="Zhang et al. 2016, [Colorful Image Colorization](https://arxiv.org/abs/1603.08511)",
      objective="class-rebalanced cross-entropy of the predicted distribution over quantized ab bins to the "
                "soft-encoded true colour of every pixel, from the lightness L alone",
      loss="sslax.losses.colorization.colorization_loss",
      reference="richzhang/colorization (`NNEncode`, `PriorFactor`, annealed mean T = 0.38)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_colorization.py::test_lab_matches_the_srgb_formula_in_numpy",
             "tests/test_colorization.py::test_soft_encoding_rebalancing_and_loss_written_out",
             "tests/test_colorization.py::test_refresh_counts_the_prior_before_step_0"),
      results=("Every method on CIFAR-10", "random init", "Colorization"))

  @property
  def bins(self) -> np.ndarray:
    return ab_bins(float(self.config.method.bin_size))

  @property
  def inputs(self) -> Images:
    size = self.config.data.get("image_size")
    # method.image_channels 1: grayscale records read as gray RGB (no colour to learn: for smoke tests)
    return Images(channels=int(self.config.method.get("image_channels", 3)),
                  image_size=None if size is None else tuple(size), dataset=self.config.data.get("name", ""))

  @property
  def out_size(self) -> int:
    """The prediction's side: the crop's, halved at every stage after the first."""
    return int(self.config.augment.crop_size[0]) // 2 ** (int(self.config.method.stage.removeprefix("stage")) - 1)

  def check_config(self):
    c, m = self.config, "method."
    check_config_value(c, "model.name", lambda v: v in RESNET_NAMES, f"a ResNet (one of {list(RESNET_NAMES)})")
    check_config_value(c, "model.cifar_stem", lambda v: v is True,
                       "True (a bool: the head's resolution assumes the CIFAR stem)")
    check_config_value(c, "model.in_channels", lambda v: v == 1, "1 (the encoder reads the lightness L)")
    check_config_value(c, "augment.crop_size", lambda v: len(v) == 2 and v[0] == v[1], "a square crop (H == W)")
    check_config_value(c, "augment.mean", lambda v: all(x == 0 for x in v),
                       "zeros (the method turns [0, 1] RGB into Lab itself)")
    check_config_value(c, "augment.std", lambda v: all(x == 1 for x in v), "ones")
    for key in ("grayscale_prob", "jitter_prob"):
      check_config_value(c, f"augment.{key}", lambda v: v == 0.0, "0.0 (the colours are the targets)")
    check_config_value(c, m + "stage", lambda v: v in ("stage1", "stage2", "stage3", "stage4"),
                       "one of ['stage1', 'stage2', 'stage3', 'stage4']")
    check_config_value(c, m + "bin_size", lambda v: 2 <= v <= 50, "a number in [2, 50] (ab units)")
    check_config_value(c, m + "rebalance", lambda v: 0 <= v <= 1, "a number in [0, 1]")
    check_config_value(c, m + "prior_images", is_positive_int, "a positive integer")
    check_config_value(c, m + "hidden_dim", is_positive_int, "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> ColorizationNet:
    m = self.config.method
    return ColorizationNet(self.config.model, m.stage, m.hidden_dim, len(self.bins), rngs=rngs)

  def init_state(self, model, key):
    return {"weights": jnp.ones((len(self.bins),), jnp.float32)}  # until `refresh` counts the prior

  @property
  def refresh_every(self) -> int:
    return 1 << 62  # once, before step 0

  def targets(self, lab: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(L input [B, H, W, 1], soft targets [B, h, w, Q]) of Lab images."""
    ab = area_mean(lab[..., 1:], self.out_size)
    return lightness(lab), soft_encode(ab, jnp.asarray(self.bins))

  def refresh(self, state, data, mesh, step: int):
    """The bin prior of the first `method.prior_images` training images -> rebalancing weights."""
    if data.train is None:
      raise ValueError("method.name: 'colorization' counts its bin prior on the training split, and the run has none")
    counts = np.zeros(len(self.bins), np.float64)

    @jax.jit
    def count(images):  # each target's nearest bin, as the loss weights it
      _, targets = self.targets(self.eval_lab(images))
      return jnp.zeros(len(self.bins)).at[jnp.argmax(targets, -1).reshape(-1)].add(1.0)

    seen = 0
    for batch in eval_batches(data.train, batch_size=500, transform=self.inputs.transform()):
      images = batch["image"][: self.config.method.prior_images - seen]
      counts += np.asarray(count(jnp.asarray(images)))
      seen += len(images)
      if seen >= self.config.method.prior_images:
        break
    weights = rebalance_weights(counts / counts.sum(), np.asarray(self.bins), lam=self.config.method.rebalance)
    return state.replace(method_state={"weights": jnp.asarray(weights)})

  def loss(self, model, batch, method_state, key, step, target=None):
    lab = rgb_to_lab(as_rgb(augment_batch(key, batch["image"], self.config.augment)))
    x, targets = self.targets(lab)
    logits, features = model(x, train=True)
    loss, aux = colorization_loss(logits, targets, method_state["weights"])
    return loss, {**aux, **collapse_metrics(features["pooled"])}, method_state

  def eval_lab(self, images: jax.Array) -> jax.Array:
    """Lab [B, H, W, 3] of the evaluation view (`augment.mean` 0 and `std` 1: [0, 1] RGB)."""
    return rgb_to_lab(as_rgb(eval_transform(images, self.config.augment)))

  def features(self, model, inputs) -> jax.Array:
    """Frozen features [B, D] of the L-only encoder on the evaluation view's lightness."""
    return model.encode(lightness(self.eval_lab(inputs["image"])), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    return resnet_stage_features(model.encoder, lightness(self.eval_lab(inputs["image"])))

  def heldout(self, model, inputs, key) -> dict:
    """{"bin_accuracy": (pixels whose most likely bin is the target's nearest, pixels)} on the
    evaluation views at the prediction's resolution; padding rows (all zeros) are not counted."""
    x, targets = self.targets(self.eval_lab(inputs["image"]))
    logits, _ = model(x, train=False)
    correct = jnp.argmax(logits, -1) == jnp.argmax(targets, -1)
    real = real_rows(inputs["image"])[:, None, None]
    return {"bin_accuracy": (jnp.sum(correct * real), jnp.sum(real) * self.out_size ** 2)}

  def reconstruct(self, model, inputs, key) -> dict[str, jax.Array]:
    """{"input": the true colours, "grayscale": what the encoder sees, "reconstruction": the
    annealed-mean colours of the predicted bins on the true L}, [B, H, W, C] in [0, 1]."""
    lab = self.eval_lab(inputs["image"])
    logits, _ = model(lightness(lab), train=False)
    ab = annealed_mean(logits, jnp.asarray(self.bins))
    b, h, w, _ = lab.shape
    ab = jax.image.resize(ab, (b, h, w, 2), "linear")
    return {"input": lab_to_rgb(lab), "grayscale": lab[..., :1] / 100.0,
            "reconstruction": lab_to_rgb(jnp.concatenate([lab[..., :1], ab], -1))}

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(), HeldoutMetrics(), Reconstructions(filename="colorizations.png"))
