"""PixelCNN: the causal receptive field by gradients, bits/dim against hand computations, the
marginal baseline, and the compiled sampler against a sub-pixel-at-a-time loop."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import method_digits_config
from sslax.eval.likelihood import MarginalHistogram
from sslax.losses.pixel import bits_per_dim, pixel_nll, pixelcnn_loss
from sslax.methods import make_method
from sslax.models.pixelcnn import PixelCNN, causal_mask, channel_groups, sample


def _tiny(channels, depth=2, seed=0):
  # 4 features per colour group, 8 in the head: with 1-2, a ReLU can be off for all of a group at
  # some pixel, which zeroes a dependence the network does have
  return PixelCNN(channels, width=4 * channels, depth=depth, kernel_size=3, first_kernel_size=5,
                  head_dim=8 * channels, rngs=nnx.Rngs(seed))


def _dependence(model, image):
  """[H*W*C out, H*W*C in]: sum over the 256 logits of |d logit / d input| (forward mode)."""
  h, w, c = image.shape
  jac = jax.jacfwd(lambda x: model(x[None] * 127.5 + 127.5)[0][0])(image)  # [H, W, C, 256, H, W, C]
  return np.asarray(jnp.sum(jnp.abs(jac), axis=3)).reshape(h * w * c, h * w * c)


@pytest.mark.parametrize("channels", [1, 3])
def test_output_never_sees_the_current_or_later_sub_pixels(channels):
  h = w = 5
  model = _tiny(channels)
  image = jax.random.uniform(jax.random.PRNGKey(1), (h, w, channels), minval=-1.0, maxval=1.0)
  dep = _dependence(model, image)
  order = np.arange(h * w * channels)  # raster order: row, column, then channel
  later_or_same = order[None, :] >= order[:, None]
  assert np.all(dep[later_or_same] == 0.0), "an output depends on its own or a later sub-pixel"

  def at(r, c, ch):
    return (r * w + c) * channels + ch

  # ...and does see the past, the up-right neighbour included (no blind spot of the masked stack)
  for r, c in ((1, 2), (1, 3), (2, 1), (0, 4), (1, 0)):
    assert dep[at(2, 2, 0), at(r, c, 0)] > 0, (r, c)
  if channels == 3:  # within the pixel: G sees R, B sees R and G
    assert dep[at(2, 2, 1), at(2, 2, 0)] > 0
    assert dep[at(2, 2, 2), at(2, 2, 0)] > 0 and dep[at(2, 2, 2), at(2, 2, 1)] > 0


def test_masks_written_out():
  groups = channel_groups(3, 3)
  a = causal_mask((1, 2), groups, groups, "A")
  b = causal_mask((1, 2), groups, groups, "B")
  np.testing.assert_array_equal(a[0, 0], np.ones((3, 3)))  # the pixel to the left: everything
  np.testing.assert_array_equal(a[0, 1], np.triu(np.ones((3, 3)), 1))  # in group < out group
  np.testing.assert_array_equal(b[0, 1], np.triu(np.ones((3, 3))))  # in group <= out group
  assert channel_groups(6, 3, halves=2) == (0, 1, 2, 0, 1, 2)


def test_bits_per_dim_of_a_known_distribution_by_hand():
  rng = np.random.default_rng(0)
  p = np.arange(1, 257, dtype=np.float64)
  p /= p.sum()  # p(v) proportional to v + 1
  pixels = rng.integers(0, 256, size=(3, 2, 2, 3))
  logits = np.broadcast_to(np.log(p), (3, 2, 2, 3, 256)) + 5.0  # a constant shift changes nothing
  expected = np.array([-np.mean(np.log2(p[x.ravel()])) for x in pixels])
  np.testing.assert_allclose(np.asarray(bits_per_dim(jnp.asarray(logits, jnp.float32), jnp.asarray(pixels))),
                             expected, rtol=1e-5)
  np.testing.assert_allclose(float(pixelcnn_loss(jnp.asarray(logits, jnp.float32), jnp.asarray(pixels))),
                             expected.mean(), rtol=1e-5)
  # a point mass on the right value costs ~0 bits; uniform costs exactly 8
  onehot = np.full((1, 2, 2, 3, 256), -1e4, np.float32)
  np.put_along_axis(onehot, pixels[:1, ..., None], 0.0, axis=-1)
  assert float(bits_per_dim(jnp.asarray(onehot), jnp.asarray(pixels[:1]))[0]) < 1e-6
  np.testing.assert_allclose(float(pixel_nll(jnp.zeros(256), jnp.asarray(3))), math.log(256), rtol=1e-6)
  np.testing.assert_allclose(bits_per_dim(jnp.zeros((2, 4, 4, 1, 256)), jnp.ones((2, 4, 4, 1), jnp.int32)),
                             [8.0, 8.0], rtol=1e-6)


def test_marginal_histogram_against_a_loop():
  rng = np.random.default_rng(0)
  train = rng.integers(0, 256, size=(50, 3, 2, 2)) // 32 * 32  # 8 values per sub-pixel
  test = rng.integers(0, 256, size=(7, 3, 2, 2))
  hist = MarginalHistogram(alpha=1.0)
  hist.add(train[:20])
  hist.add(train[20:])  # counts accumulate over batches
  expected = []
  for image in test:
    bits = []
    for idx in np.ndindex(image.shape):
      counts = np.bincount(train[(slice(None), *idx)], minlength=256) + 1.0
      bits.append(-np.log2(counts[image[idx]] / counts.sum()))
    expected.append(np.mean(bits))
  np.testing.assert_allclose(hist.bits_per_dim(test), expected, rtol=1e-12)
  with pytest.raises(ValueError, match=re.escape("images: expected integers in [0, 256), got [300, 300]")):
    hist.add(np.full((1, 3, 2, 2), 300))


def test_compiled_sampler_equals_a_sub_pixel_loop():
  model = _tiny(3, depth=1)
  key = jax.random.PRNGKey(3)
  canvas = jnp.zeros((2, 3, 3, 3), jnp.int32)
  compiled = np.asarray(jax.jit(lambda k, c: sample(model, k, c))(key, canvas))
  logits_fn = jax.jit(lambda x: model(x)[0])
  x = np.zeros((2, 3, 3, 3), np.int32)
  for t in range(3 * 3 * 3):
    r, c, ch = t // 9, (t // 3) % 3, t % 3
    logits = logits_fn(jnp.asarray(x))[:, r, c, ch]
    x[:, r, c, ch] = np.asarray(jax.random.categorical(jax.random.fold_in(key, t), logits))
  np.testing.assert_array_equal(compiled, x)
  assert compiled.dtype == np.int32 and compiled.min() >= 0 and compiled.max() <= 255


@pytest.mark.parametrize("override,message", [
    ({"model.width": 0}, "model.width: expected an integer >= model.in_channels (1): a feature per colour group at "
                         "least, got 0"),
    ({"model.kernel_size": 4}, "model.kernel_size: expected an odd positive integer, got 4"),
    ({"method.temperature": 0.0}, "method.temperature: expected a positive number, got 0.0"),
])
def test_config_errors_name_the_key(override, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(method_digits_config("pixelcnn", **override))


def test_float_images_are_refused_before_any_step():
  method = make_method(method_digits_config("pixelcnn"))
  with pytest.raises(ValueError, match=re.escape("batch.image: expected dtype uint8 (the likelihood is of 8-bit "
                                                 "pixels), got float32")):
    method.validate_batch({"image": np.zeros((8, 8, 8, 1), np.float32)}, 8)
