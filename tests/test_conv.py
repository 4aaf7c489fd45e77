"""im2col_conv: XLA's forward and input gradient, an im2col-matmul weight gradient equal to the plain one."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax import lax

from helpers import assert_close_in_norm, digits_batch, digits_smoke_config
from sslax.data import to_global
from sslax.methods import make_method
from sslax.models.conv import auto_conv, conv_function, im2col_conv, im2col_weight_grad, set_conv_impl
from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding
from sslax.xla_cpu import YNN_FLAG, YNN_VALUE

_SPECS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


# Float32 rounding of one convolution (dots of k^d * C products) and of the sin / cos around it
# moves each tensor by ~1e-6 of its norm: measured against float64, <= 9e-7 for either
# implementation, on the AVX-512 and the AVX2 code path (experiments/tolerance_mutations.py). 1e-5
# allows ten times that; the same script breaks im2col once each way (taps in the wrong order, a
# padding off by one, a kernel not flipped) and those move the gradients by 1.2 of their norm or more.
_RTOL = 1e-5


def _grads(conv, x, w, strides, padding):
  dn = lax.conv_dimension_numbers(x.shape, w.shape, _SPECS[x.ndim - 2])

  def loss(x, w):
    y = conv(x, w, strides, padding, dimension_numbers=dn)
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape) / y.size), y
  return jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(x, w)


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    ((4, 9, 9, 3), (3, 3, 3, 8), (1, 1), "SAME"),
    ((6, 10, 10, 5), (3, 3, 5, 7), (2, 2), "SAME"),
    ((3, 8, 8, 4), (1, 1, 4, 6), (2, 2), "VALID"),
    ((2, 11, 7, 3), (5, 3, 3, 4), (2, 1), ((1, 3), (2, 0))),  # explicit, uneven padding
    ((2, 9, 8, 3), (3, 3, 3, 4), (1, 1), ((4, -1), (0, 2))),  # unit stride, pad > k - 1 and a crop
    ((5, 13, 4), (4, 4, 6), (3,), "VALID"),  # 1-D, wav2vec 2.0's feature-extractor shape
    ((2, 5, 6, 4, 2), (3, 2, 3, 2, 3), (1, 2, 1), "SAME"),  # 3-D
])
def test_gradients_equal_the_plain_convolution(shape, kernel, strides, padding):
  x = jax.random.normal(jax.random.key(0), shape)
  w = jax.random.normal(jax.random.key(1), kernel)
  (la, ya), (dxa, dwa) = _grads(lax.conv_general_dilated, x, w, strides, padding)
  (lb, yb), (dxb, dwb) = _grads(im2col_conv, x, w, strides, padding)
  assert_close_in_norm({"y": yb, "dx": dxb, "dw": dwb}, {"y": ya, "dx": dxa, "dw": dwa}, _RTOL)
  # the loss sums sin(y) * c with much cancellation, so its own relative error says little: to
  # first order it moves by <c cos(y), dy> <= ||c cos(y)|| * ||dy||, with ||dy|| <= _RTOL * ||y||
  y = np.asarray(ya, np.float64)
  c = np.arange(y.size).reshape(y.shape) / y.size
  assert abs(float(lb) - float(la)) <= _RTOL * np.linalg.norm(c * np.cos(y)) * np.linalg.norm(y)


def test_weight_gradient_against_numpy_formula():
  """dW[i, j, c, o] = sum_{n, h, w} xpad[n, h * s + i, w * s + j, c] * g[n, h, w, o]."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 7, 6, 2)).astype(np.float64)
  g = rng.normal(size=(3, 4, 3, 5)).astype(np.float64)
  pads, s = ((1, 1), (1, 0)), 2
  xp = np.pad(x, ((0, 0), *pads, (0, 0)))
  want = np.zeros((3, 3, 2, 5))
  for i in range(3):
    for j in range(3):
      view = xp[:, i:i + 4 * s - 1:s, j:j + 3 * s - 1:s, :]
      want[i, j] = np.einsum("nhwc,nhwo->co", view, g)
  got = im2col_weight_grad(jnp.asarray(x, jnp.float32), jnp.asarray(g, jnp.float32), (3, 3, 2, 5), (s, s), pads)
  assert_close_in_norm(got, want, _RTOL)  # float32 against the float64 formula


def test_chunked_loop_equals_one_chunk(monkeypatch):
  """Many chunks (the loop over image groups) give the weight gradient of one big chunk."""
  import sslax.models.conv as conv_mod

  x = jax.random.normal(jax.random.key(0), (12, 6, 6, 3))
  g = jax.random.normal(jax.random.key(1), (12, 6, 6, 4))
  args = ((3, 3, 3, 4), (1, 1), ((1, 1), (1, 1)))
  one = im2col_weight_grad(x, g, *args)
  monkeypatch.setattr(conv_mod, "_PATCH_ELEMENTS", 6 * 6 * 9 * 3 * 2)  # 2 images a chunk: 6 iterations
  many = im2col_weight_grad(x, g, *args)
  assert_close_in_norm(many, one, _RTOL)  # the same sums, accumulated in another order


def test_bfloat16_inputs_give_bfloat16_gradients_close_to_float32():
  x = jax.random.normal(jax.random.key(0), (4, 8, 8, 6))
  w = jax.random.normal(jax.random.key(1), (3, 3, 6, 5))
  _, (_, dw32) = _grads(im2col_conv, x, w, (1, 1), "SAME")
  _, (dx16, dw16) = _grads(im2col_conv, x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), (1, 1), "SAME")
  assert dx16.dtype == dw16.dtype == jnp.bfloat16
  # bfloat16 keeps 8 bits (u = 2^-8 = 0.4%): rounding x, w and each product's inputs moves the
  # gradient by ~1% of its norm; 5e-2 allows five times that
  assert_close_in_norm(np.asarray(dw16, np.float32), dw32, 5e-2)


def test_dilated_and_grouped_convolutions_fall_back_to_xla():
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
  w = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
  dn = lax.conv_dimension_numbers(x.shape, w.shape, _SPECS[2])
  for kw in (dict(feature_group_count=2), dict(feature_group_count=2, rhs_dilation=(2, 2))):
    want = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn, **kw)
    got = im2col_conv(x, w, (1, 1), "SAME", dimension_numbers=dn, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    jaxpr = str(jax.make_jaxpr(jax.grad(lambda w: im2col_conv(x, w, (1, 1), "SAME", dimension_numbers=dn,
                                                               **kw).sum()))(w))
    assert "custom_vjp" not in jaxpr


def test_auto_is_im2col_on_large_cpu_inputs_and_xla_elsewhere(monkeypatch):
  # XLA read its flags at startup; XLA_FLAGS here only steers the choice
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  assert conv_function("auto") is auto_conv  # the tests run on the CPU backend
  assert conv_function("xla") is lax.conv_general_dilated
  dn = ("NHWC", "HWIO", "NHWC")
  for shape, uses_im2col in (((2, 8, 8, 3), False), ((8, 32, 32, 64), True)):  # 384 / 524,288 elements
    x = jnp.ones(shape)
    w = jnp.ones((3, 3, shape[-1], 4))
    jaxpr = str(jax.make_jaxpr(lambda x, w: auto_conv(x, w, (1, 1), "SAME", dimension_numbers=dn))(x, w))
    assert ("custom_vjp" in jaxpr) == uses_im2col
  monkeypatch.setenv("XLA_FLAGS", f"{YNN_FLAG}={YNN_VALUE}")  # XLA:CPU's YNNPACK fusions: XLA's convolutions
  assert conv_function("auto") is lax.conv_general_dilated
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert conv_function("auto") is lax.conv_general_dilated
  model = set_conv_impl(nnx.Conv(3, 4, (3, 3), rngs=nnx.Rngs(0)), "im2col")
  assert model.conv_general_dilated is im2col_conv


def test_bad_conv_impl_is_named():
  from sslax.config import validate_config

  config = digits_smoke_config()
  config.train.conv_impl = "cudnn"
  with pytest.raises(ValueError, match="train.conv_impl: expected 'auto', 'xla' or 'im2col', got 'cudnn'"):
    validate_config(config)
  with pytest.raises(ValueError, match="train.conv_impl: expected one of"):
    conv_function("cudnn")


def test_sharded_train_step_equals_the_xla_convolution(devices):
  """One SimCLR step data-parallel over 8 devices: the same loss and gradients either way.

  One step is the claim (the convolutions compute the same products); later steps would only add
  the chaotic drift of batch-norm training. `trace(0)` keeps the step's gradient, unrounded, in
  the optimizer state. Through batch norm and a temperature-0.2 softmax the convolutions' rounding
  shows as at most 3.9e-6 of a gradient's norm (measured on the AVX-512 and AVX2 code paths);
  1e-4 allows 25 times that, and the broken im2col variants of experiments/tolerance_mutations.py
  move these gradients by 1.4 of their norm or more."""
  mesh = make_mesh({"data": -1}, devices)
  batch = to_global(digits_batch(64), mesh)
  tx = optax.chain(optax.trace(decay=0.0), optax.scale(-0.1))
  out = {}
  for impl in ("xla", "im2col"):
    config = digits_smoke_config()
    config.train.conv_impl = impl
    method = make_method(config)
    state = jax.device_put(create_train_state(method, tx, seed=0), state_sharding(mesh))
    state, metrics = make_train_step(method, tx, mesh)(state, batch)
    out[impl] = (float(metrics["loss"]), jax.device_get(state.opt_state[0].trace))
  np.testing.assert_allclose(out["im2col"][0], out["xla"][0], rtol=1e-5)  # a mean of 128 terms of ~5
  assert_close_in_norm(out["im2col"][1], out["xla"][1], 1e-4, "gradient of ")
