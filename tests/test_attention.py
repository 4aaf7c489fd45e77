"""`sslax.models.attention`: the blocked kernel equals XLA's dense masked attention (values and
gradients, causal and packed-segment masks, lengths that are not a multiple of the block, bf16
within a stated bound), sharded over 8 devices too."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from sslax.models.attention import attention, check_impl, resolve_impl
from sslax.models.language import GPT


def _inputs(t, *, b=3, h=2, dh=8, seed=0, mask="segments"):
  rng = np.random.default_rng(seed)
  q, k, v, g = (jnp.asarray(rng.standard_normal((b, t, h, dh)), jnp.float32) for _ in range(4))
  lengths = rng.integers(t // 2, t + 1, b)
  valid = np.arange(t)[None] < lengths[:, None]
  if mask == "padding":
    m = jnp.asarray(valid)
  elif mask == "segments":  # 1..3 packed examples per row, then padding (segment 0)
    seg = np.where(valid, np.sort(rng.integers(1, 4, (b, t)), axis=1), 0)
    m = jnp.asarray((seg[:, :, None] == seg[:, None, :]) & valid[:, :, None] & valid[:, None, :])
  else:
    m = None
  return q, k, v, g, m, jnp.asarray(valid)


def _rows_that_read(mask, valid, causal):
  """[B, T] bool: queries with at least one key to read (the others are padding: undefined)."""
  if mask is None:
    return jnp.ones(valid.shape, bool)
  m = mask if mask.ndim == 3 else jnp.broadcast_to(mask[:, None, :], mask.shape + mask.shape[-1:])
  if causal:
    m = m & jnp.tril(jnp.ones(m.shape[-2:], bool))
  return m.any(-1)


def _loss(impl, block, mask, causal, g, rows):
  def f(q, k, v):
    out = attention(q, k, v, mask, causal=causal, impl=impl, block=block)
    return jnp.sum(out.astype(jnp.float32) * g * rows[:, :, None, None])
  return f


@pytest.mark.parametrize("mask", ["segments", "padding", None])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("t,block", [(37, 16), (64, 16), (20, 64)])
def test_blocked_equals_dense(mask, causal, t, block):
  q, k, v, g, m, valid = _inputs(t, mask=mask)
  rows = _rows_that_read(m, valid, causal)
  ref = attention(q, k, v, m, causal=causal, impl="xla")
  out = attention(q, k, v, m, causal=causal, impl="blocked", block=block)
  keep = np.asarray(rows)[:, :, None, None]
  np.testing.assert_allclose(np.where(keep, out, 0), np.where(keep, ref, 0), rtol=1e-5, atol=1e-5)
  grads_ref = jax.grad(_loss("xla", block, m, causal, g, rows), argnums=(0, 1, 2))(q, k, v)
  grads = jax.grad(_loss("blocked", block, m, causal, g, rows), argnums=(0, 1, 2))(q, k, v)
  for a, b in zip(grads, grads_ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))


def test_blocked_in_bfloat16_stays_within_dense_bfloat16s_error():
  """bf16 inputs, float32 scores and softmax in both kernels: each one's error against the float32
  result is rounding of the inputs and outputs (bf16 keeps 8 bits: relative 2^-8 ~ 0.4%); the
  blocked kernel's max error is within 1.5x the dense kernel's and below 3% of the output scale."""
  q, k, v, g, m, valid = _inputs(45, mask="segments", seed=1)
  rows = np.asarray(_rows_that_read(m, valid, True))[:, :, None, None]
  exact = np.asarray(attention(q, k, v, m, causal=True, impl="xla"))
  q16, k16, v16 = (x.astype(jnp.bfloat16) for x in (q, k, v))
  errors = {}
  for impl in ("xla", "blocked"):
    out = attention(q16, k16, v16, m, causal=True, impl=impl, block=16)
    assert out.dtype == jnp.bfloat16
    errors[impl] = float(np.abs(np.where(rows, np.asarray(out, np.float32) - exact, 0)).max())
  scale = float(np.abs(exact).max())
  assert errors["blocked"] <= 1.5 * errors["xla"] + 1e-3 * scale and errors["blocked"] < 0.03 * scale, errors


def test_blocked_sharded_over_8_devices_equals_one_device(devices):
  mesh = jax.sharding.Mesh(np.array(devices), ("data",))
  q, k, v, g, m, valid = _inputs(40, b=8, mask="segments", seed=2)
  rows = _rows_that_read(m, valid, True)
  f = jax.jit(jax.value_and_grad(_loss("blocked", 16, m, True, g, rows), argnums=(0, 1, 2)))
  one = f(q, k, v)
  shard = NamedSharding(mesh, P("data"))
  eight = f(*(jax.device_put(x, shard) for x in (q, k, v)))
  np.testing.assert_allclose(float(eight[0]), float(one[0]), rtol=1e-5)
  for a, b in zip(eight[1], one[1]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_auto_picks_blocked_for_rows_longer_than_a_block_on_the_cpu():
  assert jax.default_backend() == "cpu"
  assert resolve_impl("auto", 128, 64) == "blocked"
  assert resolve_impl("auto", 64, 64) == "xla"  # one block: nothing to skip
  assert resolve_impl("auto", 65, 64) == "xla"  # a 65-token ViT: a block and one row
  assert resolve_impl("auto", 512, 64) == "blocked"  # packed segments gain as much
  assert resolve_impl("cudnn", 128, 64) == "cudnn"


def test_bad_attention_settings_name_the_field():
  with pytest.raises(ValueError, match=r"model.attention_impl: expected one of .*got 'flash'"):
    check_impl("flash")
  with pytest.raises(ValueError, match=r"model.attention_block: expected an integer >= 1.*got 0"):
    check_impl("blocked", 0)
  with pytest.raises(ValueError, match="model.attention_impl"):
    GPT(vocab_size=11, max_len=8, dim=8, depth=1, num_heads=2, mlp_dim=16, attention_impl="dense",
        rngs=__import__("flax").nnx.Rngs(0))


def test_blocked_cross_attention_reads_every_source_key():
  """Queries and keys of different lengths (an encoder-decoder's cross-attention), source padding."""
  rng = np.random.default_rng(3)
  q, g = (jnp.asarray(rng.standard_normal((2, 70, 2, 8)), jnp.float32) for _ in range(2))
  k, v = (jnp.asarray(rng.standard_normal((2, 41, 2, 8)), jnp.float32) for _ in range(2))
  source = jnp.asarray(np.arange(41)[None] < np.array([[41], [30]]))

  def loss(impl):
    return lambda q, k, v: jnp.sum(attention(q, k, v, source, impl=impl, block=16) * g)
  np.testing.assert_allclose(attention(q, k, v, source, impl="blocked", block=16),
                             attention(q, k, v, source, impl="xla"), rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.grad(loss("blocked"), argnums=(0, 1, 2))(q, k, v),
                  jax.grad(loss("xla"), argnums=(0, 1, 2))(q, k, v)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))
  with pytest.raises(ValueError, match="causal attention expects as many keys as queries"):
    attention(q, k, v, causal=True)
