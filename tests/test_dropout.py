"""keep_mask / dropout: four 16-bit uniforms per Threefry call, the layout against NumPy, statistics, sharding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry2x32_p
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from sslax.models.transformer import dropout, keep_mask


def _numpy_keep(key, rate, shape):
  """The documented layout written out: call (..., i) counted by its flat index in (..., m), element
  (..., j) = 16-bit piece j // m (word 1 low, word 1 high, word 2 low, word 2 high) of call (..., j % m)."""
  m = -(-shape[-1] // 4)
  calls = (*shape[:-1], m)
  counts = np.arange(np.prod(calls), dtype=np.uint32).reshape(calls)
  k1, k2 = np.asarray(jax.random.key_data(key))
  w1, w2 = (np.asarray(w) for w in threefry2x32_p.bind(jnp.uint32(k1), jnp.uint32(k2), jnp.asarray(counts),
                                                       jnp.zeros(calls, jnp.uint32)))
  pieces = np.concatenate([w1 & 0xFFFF, w1 >> 16, w2 & 0xFFFF, w2 >> 16], axis=-1)[..., :shape[-1]]
  return pieces >= round(rate * 65536)


@pytest.mark.parametrize("shape", [(3, 8), (2, 5, 7), (1,), (4, 0)])
def test_mask_is_the_documented_threefry_layout(shape):
  key = jax.random.key(3)
  keep, p = keep_mask(key, 0.3, shape)
  assert keep.shape == shape and keep.dtype == jnp.bool_
  np.testing.assert_array_equal(np.asarray(keep), _numpy_keep(key, 0.3, shape))
  assert p == (65536 - round(0.3 * 65536)) / 65536


def test_keep_rate_unbiased_scale_and_independent_pieces():
  key = jax.random.key(0)
  keep, p = keep_mask(key, 0.2, (64, 128, 192))
  assert abs(p - 0.8) < 2**-17
  k = np.asarray(keep)
  n = k.size
  assert abs(k.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
  # each of the four 16-bit pieces (columns [48 i, 48 (i + 1))) keeps at the same rate; neighbours
  # within one call (columns j and j + 48) are uncorrelated
  per_piece = k.reshape(64, 128, 4, 48).mean(axis=(0, 1, 3))
  assert np.all(np.abs(per_piece - p) < 4 * np.sqrt(p * (1 - p) / (n / 4)))
  a, b = k[..., :48].astype(float).ravel(), k[..., 48:96].astype(float).ravel()
  assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(a.size)
  x = jnp.ones((64, 128, 192))
  assert abs(float(dropout(x, 0.2, key).mean()) - 1.0) < 4 * np.sqrt((1 - p) / p / n)
  assert dropout(x, 0.2, None) is x and dropout(x, 0.0, key) is x
  assert not np.array_equal(k, np.asarray(keep_mask(jax.random.key(1), 0.2, (64, 128, 192))[0]))


def test_same_mask_on_8_devices_and_other_keys(devices):
  mesh = jax.make_mesh((8,), ("data",), devices=devices)
  key = jax.random.key(7)
  sharded = jax.jit(lambda k: keep_mask(k, 0.1, (64, 16, 24))[0], out_shardings=NamedSharding(mesh, P("data")))
  np.testing.assert_array_equal(np.asarray(sharded(key)), np.asarray(keep_mask(key, 0.1, (64, 16, 24))[0]))
  raw = keep_mask(jax.random.PRNGKey(7), 0.1, (64, 16, 24))[0]  # a legacy uint32 key is Threefry's data
  np.testing.assert_array_equal(np.asarray(raw), np.asarray(keep_mask(key, 0.1, (64, 16, 24))[0]))
  rbg, p = keep_mask(jax.random.key(7, impl="rbg"), 0.5, (2000,))  # other PRNGs: jax.random.bernoulli
  assert p == 0.5 and abs(float(rbg.mean()) - 0.5) < 0.05
  assert keep_mask(key, 0.5, ())[0].shape == ()
