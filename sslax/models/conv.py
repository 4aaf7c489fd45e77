"""Convolutions as chunked matrix products (im2col), for XLA:CPU.

XLA:CPU lowers a convolution's weight gradient to a convolution whose
"kernel" is the output gradient (as large as an activation map) and whose
output is the small weight tensor, a shape its kernels run at a few GFLOP/s:
on 2 cores, fp32, batch 128, a CIFAR ResNet-18's weight gradients take
~10-11 s against ~1.6-1.8 s for its forward convolutions and PyTorch's
~1.7 s for the same gradients (`experiments/conv_grad.py` times each layer).
Its forward convolutions of the first stage (3x3, 64 channels, 32x32) also
run at half PyTorch's speed.

`im2col_conv` has `lax.conv_general_dilated`'s signature and results, and a
custom VJP; all three products are computed a chunk of images at a time in a
`fori_loop` (so the working set stays in cache and the backward pass holds
one chunk's patches, not k^d copies of an activation):
- forward: the padded chunk's k^d shifted (strided) views times the kernel's
  taps, accumulated in float32 (`im2col_forward`);
- input gradient: for unit strides, the same forward with the flipped,
  transposed kernel under the complementary padding; strided convolutions
  keep XLA's transposed convolution (a scatter of taps);
- weight gradient: the views stacked into a patch matrix [rows, k^d * C]
  (im2col) times the output gradient [rows, O], accumulated over chunks in
  float32 (`im2col_weight_grad`).
Results equal the plain path's to float32 rounding (`tests/test_conv.py`: to
1e-5 of each gradient's scale). This is what XLA lacks here; on GPUs and
TPUs cuDNN and the TPU compiler already do it well.

`set_conv_impl(model, 'auto')` (`train.conv_impl`) installs it on every
`nnx.Conv` of a model on the CPU backend, for inputs of 512k elements and more
(smaller convolutions gain nothing and compile slower), and leaves other
backends on `lax.conv_general_dilated`. It handles channels-last convolutions with any
number of spatial dimensions, strides and explicit or named padding; dilated
or grouped convolutions fall back to the plain path.
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

CONV_IMPLS = ("auto", "xla", "im2col")

# Patch-matrix elements per chunk of the weight-gradient loop (~4 MiB in float32, within L2/L3):
# on 2 cores, chunks of 0.6-1M elements ran the CIFAR ResNet-18 weight gradients fastest.
_PATCH_ELEMENTS = 1024 * 1024
# Padded-input elements per chunk of the forward loop: ~300k ran the ResNet-18 layers fastest.
_INPUT_ELEMENTS = 320 * 1024
# 'auto' uses im2col from this many input elements (global shape) up; see `auto_conv`.
_AUTO_MIN_ELEMENTS = 512 * 1024


def _channels_last(ndim: int):
  spatial = "DHW"[3 - (ndim - 2):] if ndim <= 5 else None
  if spatial is None:
    return None
  return lax.conv_dimension_numbers((1,) * ndim, (1,) * ndim,
                                    ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C"))


def _largest_divisor_at_most(n: int, cap: int) -> int:
  cap = max(1, min(n, cap))
  return next(d for d in range(cap, 0, -1) if n % d == 0)


def _out_size(size, k, s, lo, hi):
  return (size + lo + hi - k) // s + 1


def _view(xc, offset, out_sp, strides):
  """The strided view of a padded chunk [b, *spatial, C] that kernel tap `offset` multiplies."""
  idx = tuple(slice(off, off + (size - 1) * s + 1, s) for off, size, s in zip(offset, out_sp, strides))
  return xc[(slice(None),) + idx]


def _pad(xc, pads):
  """Zero padding of the spatial dimensions; negative pads crop (as in `lax.conv_general_dilated`)."""
  return lax.pad(xc, jnp.zeros((), xc.dtype), [(0, 0, 0), *[(lo, hi, 0) for lo, hi in pads], (0, 0, 0)])


def _chunked(n, per_image, target):
  """(images per chunk b, number of chunks): chunk i holds images {a * chunks + i}, a < b, so under
  data parallelism every device holds the same number of each chunk's images and the loop runs on
  local data (the batch axis stays sharded)."""
  b = _largest_divisor_at_most(n, target // max(per_image, 1))
  return b, n // b


def im2col_forward(x: jax.Array, w: jax.Array, strides, pads) -> jax.Array:
  """A channels-last convolution as matrix products, a chunk of images at a time.

  Each chunk is padded and multiplied tap by tap (`sum_t view_t(x) @ w[t]`, k^d products of
  [rows, C] x [C, O]); with few input channels (C < 32, a stem) the views are stacked into one
  patch matrix [rows, k^d * C] first, so each product has a useful depth. On 2 cores this runs the
  3x3 convolutions of a CIFAR ResNet-18's first stage ~1.8x faster than XLA:CPU's convolution and
  the others at par (`experiments/conv_grad.py`).

  Args:
    x: [N, *spatial, C]; w: [*k, C, O]; strides: per spatial dimension; pads: ((lo, hi), ...).
  Returns: [N, *out_spatial, O] in the promoted dtype of x and w, accumulated in float32.
  """
  ks, (c, o) = tuple(w.shape[:-2]), w.shape[-2:]
  n = x.shape[0]
  out_sp = tuple(_out_size(d, k, s, lo, hi) for d, k, s, (lo, hi) in zip(x.shape[1:-1], ks, strides, pads))
  taps = list(itertools.product(*[range(k) for k in ks]))
  padded = math.prod(max(d + lo + hi, 1) for d, (lo, hi) in zip(x.shape[1:-1], pads)) * c
  b, steps = _chunked(n, padded, _INPUT_ELEMENTS)
  xs = x.reshape(b, steps, *x.shape[1:])
  stack = c < 32
  wm = w.reshape(len(taps) * c, o) if stack else w.reshape(len(taps), c, o)
  dtype = jnp.result_type(x.dtype, w.dtype)

  def chunk(i):
    xc = _pad(lax.dynamic_index_in_dim(xs, i, axis=1, keepdims=False), pads)
    if stack:
      patches = jnp.stack([_view(xc, t, out_sp, strides) for t in taps], axis=-2).reshape(-1, len(taps) * c)
      y = jnp.dot(patches, wm, preferred_element_type=jnp.float32)
    else:
      y = sum(jnp.dot(_view(xc, t, out_sp, strides).reshape(-1, c), wm[j], preferred_element_type=jnp.float32)
              for j, t in enumerate(taps))
    return y.astype(dtype).reshape(b, 1, *out_sp, o)

  def body(i, out):
    return lax.dynamic_update_index_in_dim(out, chunk(i), i, axis=1)

  out = lax.fori_loop(0, steps, body, jnp.zeros((b, steps, *out_sp, o), dtype))
  return out.reshape(n, *out_sp, o)


def im2col_weight_grad(x: jax.Array, g: jax.Array, kernel_shape, strides, pads) -> jax.Array:
  """The gradient of a channels-last convolution with respect to its kernel, by im2col matmuls.

  Args:
    x: input [N, *spatial, C].
    g: output gradient [N, *out_spatial, O].
    kernel_shape: (*k, C, O).
    strides: one stride per spatial dimension.
    pads: ((lo, hi), ...) explicit padding per spatial dimension.
  Returns: [*k, C, O] in x's dtype, accumulated in float32.
  """
  ks, (c, o) = tuple(kernel_shape[:-2]), kernel_shape[-2:]
  n, out_sp = x.shape[0], g.shape[1:-1]
  taps = list(itertools.product(*[range(k) for k in ks]))
  b, steps = _chunked(n, math.prod(out_sp) * len(taps) * c, _PATCH_ELEMENTS)
  xs = x.reshape(b, steps, *x.shape[1:])
  gs = g.reshape(b, steps, *g.shape[1:])

  def body(i, acc):
    # Padding one chunk at a time: padding the whole input first costs a full copy of it.
    xc = _pad(lax.dynamic_index_in_dim(xs, i, axis=1, keepdims=False), pads)
    gc = lax.dynamic_index_in_dim(gs, i, axis=1, keepdims=False)
    patches = jnp.stack([_view(xc, t, out_sp, strides) for t in taps], axis=-2).reshape(-1, len(taps) * c)
    return acc + jnp.dot(patches.T, gc.reshape(-1, o), preferred_element_type=jnp.float32)

  acc = lax.fori_loop(0, steps, body, jnp.zeros((len(taps) * c, o), jnp.float32))
  return acc.reshape(*ks, c, o).astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, strides, pads, dn):
  return im2col_forward(x, w, strides, pads)


def _conv_fwd(x, w, strides, pads, dn):
  return _conv(x, w, strides, pads, dn), (x, w)


def _conv_bwd(strides, pads, dn, res, g):
  x, w = res
  if all(s == 1 for s in strides):
    # Unit stride: the input gradient is the convolution of g with the spatially flipped kernel
    # (in and out channels swapped) under the complementary padding k - 1 - pad, so it takes the
    # im2col forward path too.
    ks = w.shape[:-2]
    w_t = jnp.flip(w, axis=tuple(range(len(ks)))).swapaxes(-1, -2)
    dx = im2col_forward(g, w_t, strides, tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(ks, pads)))
  else:  # strided: a transposed convolution (scatter of taps); XLA's runs close to its forward
    _, vjp_x = jax.vjp(lambda x_: lax.conv_general_dilated(x_, w, strides, pads, dimension_numbers=dn), x)
    (dx,) = vjp_x(g)
  dw = im2col_weight_grad(x, g, w.shape, strides, pads)
  return dx, dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, batch_group_count=1, precision=None,
                preferred_element_type=None, out_sharding=None):
  """`lax.conv_general_dilated` computed with chunked matrix products (see the module docstring).

  Takes the same arguments; channels-last (N...C, ...IO) convolutions without dilation, groups,
  a precision or an output type are computed here, any other falls back to
  `lax.conv_general_dilated`. Pass it as `nnx.Conv(..., conv_general_dilated=im2col_conv)`.
  """
  ndim = lhs.ndim
  plain = functools.partial(lax.conv_general_dilated, lhs, rhs, window_strides, padding,
                            lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                            dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
                            batch_group_count=batch_group_count, precision=precision,
                            preferred_element_type=preferred_element_type)
  dn = _channels_last(ndim)
  spatial = ndim - 2
  ones = (1,) * spatial
  if (dn is None or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != dn
      or tuple(lhs_dilation or ones) != ones or tuple(rhs_dilation or ones) != ones
      or feature_group_count != 1 or batch_group_count != 1 or precision is not None
      or preferred_element_type is not None or out_sharding is not None):
    if out_sharding is not None:
      return plain(out_sharding=out_sharding)
    return plain()
  strides = tuple(int(s) for s in window_strides)
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(lhs.shape[1:-1], rhs.shape[:-2], strides, padding)
  else:
    pads = padding
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  return _conv(lhs, rhs, strides, pads, dn)


def auto_conv(lhs, rhs, *args, **kwargs):
  """`im2col_conv` for inputs of at least `_AUTO_MIN_ELEMENTS` elements, `lax.conv_general_dilated`
  for smaller ones: below that, on 2 cores, im2col is no faster (0.7-1.0x, fwd + both gradients of a
  3x3 convolution with up to 256k input elements) and compiles ~4x slower; from 1M elements up it
  is 1.8-3.9x faster (`experiments/conv_impl_steps.py`, `experiments/conv_grad.py`)."""
  conv = im2col_conv if lhs.size >= _AUTO_MIN_ELEMENTS else lax.conv_general_dilated
  return conv(lhs, rhs, *args, **kwargs)


def conv_function(impl: str):
  """The convolution that `train.conv_impl` names: 'xla' -> `lax.conv_general_dilated`,
  'im2col' -> `im2col_conv`, 'auto' -> `auto_conv` (im2col for large inputs) on the CPU
  backend, XLA's elsewhere."""
  if impl not in CONV_IMPLS:
    raise ValueError(f"train.conv_impl: expected one of {list(CONV_IMPLS)}, got {impl!r}")
  if impl == "auto":
    from sslax.xla_cpu import ynn_dots

    # Under XLA:CPU's YNNPACK fusions XLA's own convolutions win: a SimCLR ResNet-18 step ran
    # 0.82x PyTorch with them against 0.68x with im2col (RESULTS.md, `experiments/xla_cpu_flags.py`).
    return auto_conv if jax.default_backend() == "cpu" and not ynn_dots() else lax.conv_general_dilated
  return im2col_conv if impl == "im2col" else lax.conv_general_dilated


def set_conv_impl(model: nnx.Module, impl: str) -> nnx.Module:
  """Sets the convolution function of every `nnx.Conv` in `model`, and of every module that calls
  its own `conv_general_dilated` attribute as `nnx.Conv` does (`sslax.models.pixelcnn.CausalConv`),
  in place; returns `model`."""
  fn = conv_function(impl)
  for _, node in nnx.iter_graph(model):
    if isinstance(node, nnx.Module) and hasattr(node, "conv_general_dilated"):  # nnx.Conv has it too
      node.conv_general_dilated = fn
  return model
