import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sslax.augment import (augment_batch, color_jitter, eval_transform, gaussian_blur, horizontal_flip,
                           random_grayscale, random_resized_crop, solarize)

RECIPE = dict(crop_size=(16, 16), crop_scale=(0.08, 1.0), flip_prob=0.5, brightness=0.4, contrast=0.4,
              saturation=0.2, hue=0.1, jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.5,
              solarize_prob=0.2, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def _images(n=8, h=24, w=20, c=3, seed=0):
  return jax.random.randint(jax.random.PRNGKey(seed), (n, h, w, c), 0, 256).astype(jnp.uint8)


def test_same_key_same_output_different_key_different_output():
  x = _images()
  f = jax.jit(lambda k, x: augment_batch(k, x, RECIPE))
  a, b = f(jax.random.PRNGKey(1), x), f(jax.random.PRNGKey(1), x)
  c = f(jax.random.PRNGKey(2), x)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.allclose(np.asarray(a), np.asarray(c))
  assert a.shape == (8, 16, 16, 3) and a.dtype == jnp.float32


def test_each_example_gets_its_own_draw():
  x = jnp.broadcast_to(_images(1), (8, 24, 20, 3))
  out = np.asarray(jax.jit(lambda k, x: augment_batch(k, x, RECIPE))(jax.random.PRNGKey(0), x))
  assert len({out[i].tobytes() for i in range(8)}) == 8


def test_value_ranges_before_normalization():
  x = _images().astype(jnp.float32) / 255.0
  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  for fn in [lambda k, im: color_jitter(k, im, 0.8, 0.8, 0.8, 0.5, p=1.0),
             lambda k, im: gaussian_blur(k, im, p=1.0),
             lambda k, im: random_resized_crop(k, im, (16, 16)),
             lambda k, im: solarize(k, im, p=1.0)]:
    y = jax.vmap(fn)(jax.random.split(keys[0], 8), x)
    assert float(y.min()) >= -1e-5 and float(y.max()) <= 1.0 + 1e-5


def test_flip_grayscale_solarize_exact():
  x = _images(1)[0].astype(jnp.float32) / 255.0
  k = jax.random.PRNGKey(0)
  np.testing.assert_array_equal(np.asarray(horizontal_flip(k, x, p=1.0)), np.asarray(x[:, ::-1]))
  np.testing.assert_array_equal(np.asarray(horizontal_flip(k, x, p=0.0)), np.asarray(x))
  g = np.asarray(random_grayscale(k, x, p=1.0))
  expected = np.asarray(x) @ np.array([0.299, 0.587, 0.114], np.float32)
  np.testing.assert_allclose(g[..., 0], expected, rtol=1e-5)
  np.testing.assert_array_equal(g[..., 0], g[..., 2])
  s = np.asarray(solarize(k, x, p=1.0, threshold=0.5))
  np.testing.assert_allclose(s, np.where(np.asarray(x) >= 0.5, 1 - np.asarray(x), np.asarray(x)))


def test_full_crop_is_identity_resize():
  x = _images(1, 16, 16)[0].astype(jnp.float32) / 255.0
  y = random_resized_crop(jax.random.PRNGKey(0), x, (16, 16), scale=(1.0, 1.0), ratio=(1.0, 1.0))
  np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-5)


def test_blur_preserves_constant_image_and_mean():
  x = jnp.full((16, 16, 3), 0.3)
  np.testing.assert_allclose(np.asarray(gaussian_blur(jax.random.PRNGKey(0), x, p=1.0)), 0.3, atol=1e-6)


def test_hue_shift_round_trip_and_one_channel():
  x = _images(2).astype(jnp.float32) / 255.0
  jitter = jax.jit(jax.vmap(lambda k, im: color_jitter(k, im, 0.0, 0.0, 0.0, 0.0, p=1.0)))  # one program, not one per op
  y = jitter(jax.random.split(jax.random.PRNGKey(0), 2), x)
  np.testing.assert_allclose(np.asarray(y), np.asarray(x), atol=1e-5)  # zero-strength jitter is the identity
  gray = _images(4, c=1)
  recipe = dict(RECIPE, mean=(0.5,), std=(0.25,))
  out = jax.jit(lambda k, x: augment_batch(k, x, recipe))(jax.random.PRNGKey(0), gray)
  assert out.shape == (4, 16, 16, 1)


def test_eval_transform_resizes_and_normalizes():
  x = _images(2, 24, 20)
  y = eval_transform(x, RECIPE)
  assert y.shape == (2, 16, 16, 3)
  z = eval_transform(_images(2, 16, 16), RECIPE)
  np.testing.assert_allclose(np.asarray(z), (np.asarray(_images(2, 16, 16)) / 255.0 - 0.5) / 0.25, atol=1e-5)
