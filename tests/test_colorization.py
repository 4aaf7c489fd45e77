"""Colorization and CMC (the methods on Lab): Lab against the sRGB formula, soft encoding,
rebalancing and the losses written out in NumPy, and the bin prior counted by `refresh` before step 0."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import log_softmax, method_digits_config
from sslax.augment.color import ab_bins, lab_to_rgb, rgb_to_lab
from sslax.eval import EvalData
from sslax.losses.colorization import annealed_mean, colorization_loss, rebalance_weights, soft_encode
from sslax.methods import make_method


def _lab_numpy(rgb):
  """sRGB -> XYZ (D65) -> CIE Lab, written out in float64."""
  c = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
  m = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
  xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
  f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
  return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], -1)


def test_lab_matches_the_srgb_formula_in_numpy():
  rgb = np.random.default_rng(0).uniform(size=(500, 3))
  rgb[:5] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0.01, 0.02, 0.03]]  # black, white, primaries, dark
  lab = np.asarray(rgb_to_lab(jnp.asarray(rgb, jnp.float32)), np.float64)
  np.testing.assert_allclose(lab, _lab_numpy(rgb), atol=2e-3)
  np.testing.assert_allclose(np.asarray(lab_to_rgb(jnp.asarray(lab, jnp.float32))), rgb, atol=1e-4)
  bins = ab_bins(20.0)
  assert len(bins) == len({tuple(b) for b in bins.tolist()}) and np.all(np.mod(bins, 20.0) == 0)


def test_soft_encoding_rebalancing_and_loss_written_out():
  bins = np.asarray(ab_bins(20.0), np.float64)
  q = len(bins)
  rng = np.random.default_rng(1)
  ab = rng.uniform(-60, 60, size=(2, 3, 3, 2))
  got = np.asarray(soft_encode(jnp.asarray(ab, jnp.float32), jnp.asarray(bins, jnp.float32)))
  want = np.zeros((2, 3, 3, q))
  for idx in np.ndindex(2, 3, 3):
    d2 = ((bins - ab[idx]) ** 2).sum(1)
    near = np.argsort(d2)[:5]
    w = np.exp(-d2[near] / (2 * 5.0 ** 2))
    want[idx + (near,)] = w / w.sum()
  np.testing.assert_allclose(got, want, atol=1e-5)
  prior = rng.dirichlet(np.ones(q) * 0.3)
  w = rebalance_weights(prior, bins, lam=0.5)
  kernel = np.exp(-((bins[:, None] - bins[None]) ** 2).sum(-1) / 50.0)
  smooth = kernel @ prior / (kernel @ prior).sum()
  np.testing.assert_allclose(np.sum(smooth * w), 1.0, rtol=1e-5)
  np.testing.assert_allclose(w / w[0], (1 / (0.5 * smooth + 0.5 / q)) / (1 / (0.5 * smooth[0] + 0.5 / q)), rtol=1e-5)
  logits = rng.normal(size=(2, 3, 3, q))
  loss, aux = colorization_loss(jnp.asarray(logits, jnp.float32), jnp.asarray(got), jnp.asarray(w))
  log_p = log_softmax(logits)
  ref = np.mean(w[want.argmax(-1)] * -(want * log_p).sum(-1))
  np.testing.assert_allclose(float(loss), ref, rtol=1e-5)
  assert float(aux["bin_accuracy"]) == pytest.approx(np.mean(logits.argmax(-1) == want.argmax(-1)))
  # the annealed mean at T -> 0 is the mode's bin, at T = 1 the mean of the distribution
  np.testing.assert_allclose(np.asarray(annealed_mean(jnp.asarray(logits, jnp.float32), jnp.asarray(bins, jnp.float32),
                                                      temperature=1e-3)), bins[logits.argmax(-1)], atol=1e-3)


class _State:
  def __init__(self, method_state):
    self.method_state = method_state

  def replace(self, method_state):
    return _State(method_state)


def test_refresh_counts_the_prior_before_step_0():
  config = method_digits_config("colorization")
  config.unlock()
  config.method.image_channels, config.method.prior_images = 3, 30
  method = make_method(config)
  assert method.refresh_every > 10 ** 9  # once, before step 0
  red, blue = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
  red[..., 0], blue[..., 2] = 255, 255
  records = [{"image": red, "label": 0}] * 20 + [{"image": blue, "label": 1}] * 20
  state = method.refresh(_State(method.init_state(None, None)), EvalData(train=records), None, 0)
  weights = np.asarray(state.method_state["weights"])
  bins = np.asarray(method.bins, np.float64)
  # the first 30 images: 20 red, 10 blue, each of out_size^2 pixels in its colour's nearest bin
  counts = np.zeros(len(bins))
  for rgb, n in (([1.0, 0.0, 0.0], 20), ([0.0, 0.0, 1.0], 10)):
    ab = _lab_numpy(np.array([rgb]))[0, 1:]
    counts[np.argmin(((bins - ab) ** 2).sum(1))] += n * method.out_size ** 2
  np.testing.assert_allclose(weights, rebalance_weights(counts / counts.sum(), bins), rtol=1e-5)
  assert weights.shape == (len(bins),) and np.all(weights > 0)


def test_cmc_loss_is_infonce_across_the_lab_views():
  from flax import nnx

  from sslax.augment import augment_batch
  from sslax.methods.cmc import lab_views
  from sslax.models.functional import merge_model, split_model

  config = method_digits_config("cmc")
  method = make_method(config)
  graphdef, params, stats = split_model(method.build_model(nnx.Rngs(0)))
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (16, 8, 8, 1)), jnp.uint8)
  key = jax.random.PRNGKey(3)
  loss, aux, _ = method.loss(merge_model(graphdef, params, stats), {"image": images}, {}, key, jnp.asarray(0))
  views = lab_views(augment_batch(key, images, config.augment))
  out = merge_model(graphdef, params, stats)(views, train=True)
  zl, zab = (np.asarray(out[v][0], np.float64) for v in ("L", "ab"))
  zl /= np.linalg.norm(zl, axis=1, keepdims=True)
  zab /= np.linalg.norm(zab, axis=1, keepdims=True)
  logits = zl @ zab.T / config.method.temperature

  def ce(x):  # rows against their diagonal
    x = x - x.max(1, keepdims=True)
    return np.mean(np.log(np.exp(x).sum(1)) - np.diag(x))

  np.testing.assert_allclose(float(loss), (ce(logits) + ce(logits.T)) / 2, rtol=1e-4)
  # the probe reads both encoders, concatenated
  feats = method.features(merge_model(graphdef, params, stats), {"image": images})
  assert feats.shape == (16, 2 * merge_model(graphdef, params, stats).l_net.encoder.num_features)
