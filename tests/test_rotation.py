"""Rotation prediction: the four quarter turns and the 4-way cross-entropy, against NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import SMOKE, digits_batch, method_digits_config
from sslax.augment import augment_batch
from sslax.methods import make_method
from sslax.methods.rotation import rotate_all


def test_rotate_all_gives_every_quarter_turn_with_its_label():
  images = np.random.default_rng(0).integers(0, 256, (3, 5, 5, 2), dtype=np.uint8)
  rotated, labels = rotate_all(jnp.asarray(images))
  assert rotated.shape == (12, 5, 5, 2)
  np.testing.assert_array_equal(np.asarray(labels), np.repeat(np.arange(4), 3))
  for k in range(4):
    for i in range(3):  # k counter-clockwise quarter turns of image i, in the plane (H, W)
      np.testing.assert_array_equal(np.asarray(rotated[3 * k + i]), np.rot90(images[i], k, axes=(0, 1)))


def test_loss_is_the_cross_entropy_of_the_rotation_written_out():
  config = method_digits_config("rotation", **SMOKE)
  method = make_method(config)
  model = method.build_model(nnx.Rngs(params=jax.random.PRNGKey(0)))
  batch = {"image": jnp.asarray(digits_batch(16)["image"])}
  key = jax.random.PRNGKey(3)
  graphdef, state = nnx.split(model)
  loss, aux, _ = method.loss(nnx.merge(graphdef, state), batch, {}, key, 0)
  # the same views and the same (train-mode) forward pass, then softmax cross-entropy in NumPy
  x, labels = rotate_all(augment_batch(key, batch["image"], config.augment))
  logits = np.asarray(nnx.merge(graphdef, state)(x, train=True)[0], np.float64)
  log_probs = logits - logits.max(1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
  labels = np.asarray(labels)
  expected = -log_probs[np.arange(len(labels)), labels].mean()
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  np.testing.assert_allclose(float(aux["accuracy"]), np.mean(logits.argmax(1) == labels), rtol=1e-6)


def test_a_crop_that_is_not_square_is_refused():
  config = method_digits_config("rotation", **{"augment.crop_size": (8, 6)})
  with pytest.raises(ValueError, match=r"augment.crop_size: expected a square crop \(H == W\)"):
    make_method(config)
