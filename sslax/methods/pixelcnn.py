"""PixelCNN: maximum likelihood of the image, one sub-pixel at a time.

van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent Neural Networks",
ICML 2016, and van den Oord et al., "Conditional Image Generation with
PixelCNN Decoders", NeurIPS 2016 (the gated network of
`sslax.models.pixelcnn`): p(x) = prod_i p(x_i | x_<i) over the H * W * C
sub-pixels in raster order (R before G before B within a pixel), each a
256-way softmax over its integer value, trained by minimizing bits/dim
(`sslax.losses.pixel`). Images are read as uint8 and not augmented: the
likelihood is of the data's own pixels (openai/pixel-cnn trains CIFAR-10
the same way).

Reported: held-out bits/dim beside uniform 8 bits and the training set's
per-sub-pixel marginal (`sslax.eval.likelihood.PixelBaselines`), a grid of
samples (`Samples`: one compiled `fori_loop` over sub-pixels), and the
probes of the features: the last horizontal stack averaged over positions,
and per block (`LayerProbe`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.config import check_config_value
from sslax.data.modality import Images
from sslax.eval import KNN, HeldoutMetrics, LinearProbe, real_rows
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.eval.likelihood import PixelBaselines, Samples
from sslax.losses.pixel import bits_per_dim, pixelcnn_loss
from sslax.methods.base import Method, MethodCard, register
from sslax.methods.two_view import image_inputs
from sslax.models.pixelcnn import PixelCNN, sample


def _pixels(images: jax.Array) -> jax.Array:
  """uint8 [B, H, W, C] -> int32 values (the probes' padding rows are zeros: value 0)."""
  return images.astype(jnp.int32)


@register("pixelcnn")
class PixelCNNMethod(Method):
  """Gated PixelCNN on the shared train step; see `experiments/pixelcnn_cifar10.py` and
  `experiments/pixelcnn_fashion_mnist.py`."""
  card = MethodCard(
      family="autoregressive",
      paper="van den Oord et al. 2016, [Pixel Recurrent Neural Networks](https://arxiv.org/abs/1601.06759); "
            "van den Oord et al. 2016, [Conditional Image Generation with PixelCNN Decoders]"
            "(https://arxiv.org/abs/1606.05328)",
      objective="$-\\frac{1}{HWC}\\sum_i \\log_2 p(x_i \\mid x_{<i})$, a 256-way softmax per sub-pixel "
                "(bits per dimension)",
      loss="sslax.losses.pixel.pixelcnn_loss",
      reference="openai/pixel-cnn (`bits_per_dim`); the gated stacks of van den Oord et al. 2016b, Figure 2",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_pixelcnn.py::test_output_never_sees_the_current_or_later_sub_pixels",
             "tests/test_pixelcnn.py::test_bits_per_dim_of_a_known_distribution_by_hand"),
      results=("PixelCNN", "PixelCNN"))

  @property
  def inputs(self) -> Images:
    return image_inputs(self.config)

  def check_config(self):
    m = self.config.model
    check_config_value(self.config, "model.name", lambda v: v == "pixelcnn", "'pixelcnn'")
    c = int(m.in_channels)
    check_config_value(self.config, "model.width", lambda v: isinstance(v, int) and v >= c,
                       f"an integer >= model.in_channels ({c}): a feature per colour group at least")
    check_config_value(self.config, "model.head_dim", lambda v: isinstance(v, int) and v >= c,
                       f"an integer >= model.in_channels ({c}): a feature per colour group at least")
    check_config_value(self.config, "model.depth", lambda v: isinstance(v, int) and v >= 0, "an integer >= 0")
    for key in ("model.kernel_size", "model.first_kernel_size"):
      check_config_value(self.config, key, lambda v: isinstance(v, int) and v >= 1 and v % 2 == 1,
                         "an odd positive integer")
    check_config_value(self.config, "method.temperature", lambda v: v > 0, "a positive number")
    check_config_value(self.config, "method.num_samples", lambda v: isinstance(v, int) and v >= 0,
                       "an integer >= 0 (0: no samples drawn)")

  def validate_batch(self, batch, num_devices):
    super().validate_batch(batch, num_devices)
    dtype = np.dtype(batch["image"].dtype)
    if dtype != np.uint8:
      raise ValueError(f"batch.image: expected dtype uint8 (the likelihood is of 8-bit pixels), got {dtype}")

  def build_model(self, rngs: nnx.Rngs) -> PixelCNN:
    m = self.config.model
    return PixelCNN(int(m.in_channels), width=m.width, depth=m.depth, kernel_size=m.kernel_size,
                    first_kernel_size=m.first_kernel_size, head_dim=m.head_dim, rngs=rngs)

  def loss(self, model, batch, method_state, key, step, target=None):
    pixels = _pixels(batch["image"])
    logits, features = model(pixels, train=True)
    return pixelcnn_loss(logits, pixels), collapse_metrics(features["pooled"]), method_state

  def features(self, model, inputs) -> jax.Array:
    """[B, width]: the last horizontal stack averaged over positions."""
    return model.encode(_pixels(inputs["image"]), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    """{"block1".."blockN"}: each block's horizontal stack averaged over positions."""
    _, f = model(_pixels(inputs["image"]), train=False)
    return {name: jnp.mean(f[name], axis=(1, 2)) for name in f if name.startswith("block")}

  def heldout(self, model, inputs, key) -> dict:
    """{"bits_per_dim": (sum over images, images)}; padding rows (all zeros) are not counted."""
    pixels = _pixels(inputs["image"])
    logits, _ = model(pixels, train=False)
    real = real_rows(pixels)
    return {"bits_per_dim": (jnp.sum(bits_per_dim(logits, pixels) * real), jnp.sum(real))}

  def sample(self, model, key, canvas) -> jax.Array:
    """Images [B, H, W, C] int32 drawn from the model at `method.temperature` (1: the model's own
    distribution), shaped and sharded as `canvas`."""
    return sample(model, key, canvas, temperature=float(self.config.method.temperature))

  def evaluators(self):
    samples = int(self.config.method.num_samples)
    return (KNN(), LinearProbe(), LayerProbe(), HeldoutMetrics(), PixelBaselines(),
            *((Samples(num_images=samples),) if samples else ()))
