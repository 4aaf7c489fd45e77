"""Gated PixelCNN: an autoregressive image model whose output at each sub-pixel sees only the
sub-pixels before it in raster order (rows, then columns, then R, G, B).

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves, Kavukcuoglu,
"Conditional Image Generation with PixelCNN Decoders", NeurIPS 2016 (the
gated blocks with a vertical and a horizontal stack, which remove the
"blind spot" of the masked 3x3 stack of van den Oord et al. 2016, "Pixel
Recurrent Neural Networks", ICML 2016, whose masks A / B this keeps):

- the **vertical stack** convolves an (k//2 + 1) x k window of the rows at
  and above the current one; it reaches the horizontal stack only shifted
  down by one row, so the horizontal stack sees strictly earlier rows
  through it;
- the **horizontal stack** convolves a 1 x (k//2 + 1) window ending at the
  current pixel; at the current pixel its features are split into one group
  per colour channel, and mask A (the first layer) lets group g see input
  channels < g, mask B (every later layer) groups <= g;
- each layer is gated, tanh(a) * sigmoid(b), and the horizontal stack is
  residual after the first layer;
- the head (ReLU, masked 1x1, ReLU, masked 1x1) gives 256 logits per
  sub-pixel: `(logits [B, H, W, C, 256], features)`.

The masks are constants rebuilt from the layer's static shape when traced
(numpy, cached), not parameters: checkpoints hold only the kernels and
biases. Convolutions go through `conv_general_dilated`, which
`sslax.models.conv.set_conv_impl` (`train.conv_impl`) swaps for im2col on
the CPU as it does for `nnx.Conv`.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

LEVELS = 256


def channel_groups(n: int, groups: int, halves: int = 1) -> tuple[int, ...]:
  """The colour group of each of `n` features: contiguous blocks of n / (groups * halves), repeated
  for each of `halves` (a gate's two halves pair features of the same group).

  Examples:
    >>> channel_groups(6, 3)
    (0, 0, 1, 1, 2, 2)
    >>> channel_groups(4, 2, halves=2)
    (0, 1, 0, 1)
  """
  per = n // halves
  return tuple(int(g) for g in np.tile(np.arange(per) * groups // per, halves))


@functools.lru_cache(maxsize=None)
def causal_mask(kernel: tuple[int, int], in_groups: tuple[int, ...], out_groups: tuple[int, ...],
                mask_type: str | None) -> np.ndarray:
  """[kh, kw, cin, cout] 0/1 mask of a kernel whose last row's last column is the current pixel
  (the windows of this module end there): mask 'A' keeps there only input groups < the output's,
  'B' groups <= it; None keeps everything (the vertical stack, shifted afterwards)."""
  kh, kw = kernel
  mask = np.ones((kh, kw, len(in_groups), len(out_groups)), np.float32)
  if mask_type is not None:
    i, o = np.asarray(in_groups)[:, None], np.asarray(out_groups)[None, :]
    mask[kh - 1, kw - 1] = (i < o) if mask_type == "A" else (i <= o)
  return mask


class CausalConv(nnx.Module):
  """A convolution over the window that ends at the current pixel: `kernel` (kh, kw) covers rows
  i - kh + 1 .. i and, in the last row, columns j - kw // 2 ... (`full_rows=True`: centred, the
  vertical stack) or j - kw + 1 .. j (the horizontal stack), masked per colour group there."""

  def __init__(self, cin: int, cout: int, kernel: tuple[int, int], *, in_groups, out_groups,
               mask_type: str | None, full_rows: bool, rngs: nnx.Rngs):
    kh, kw = kernel
    self.kernel_shape, self.mask_type = (kh, kw), mask_type
    self.in_groups, self.out_groups = tuple(in_groups), tuple(out_groups)
    self.padding = ((kh - 1, 0), (kw // 2, kw // 2) if full_rows else (kw - 1, 0))
    self.kernel = nnx.Param(nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")(
        rngs.params(), (kh, kw, cin, cout)))
    self.bias = nnx.Param(jnp.zeros((cout,)))
    self.conv_general_dilated = lax.conv_general_dilated

  def __call__(self, x: jax.Array) -> jax.Array:
    mask = causal_mask(self.kernel_shape, self.in_groups, self.out_groups, self.mask_type)
    y = self.conv_general_dilated(x, self.kernel[...] * mask, (1, 1), self.padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.bias[...]


def _gate(x: jax.Array) -> jax.Array:
  a, b = jnp.split(x, 2, axis=-1)
  return jnp.tanh(a) * jax.nn.sigmoid(b)


def shift_down(x: jax.Array) -> jax.Array:
  """Row i takes row i - 1 (row 0 zeros): what was computed from rows <= i - 1."""
  return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


class GatedBlock(nnx.Module):
  """One gated layer of both stacks (van den Oord et al. 2016b, Figure 2): `(v, h) -> (v', h')`."""

  def __init__(self, cin: int, width: int, kernel_size: int, groups: int, *, first: bool, rngs: nnx.Rngs):
    k, half = kernel_size, kernel_size // 2 + 1
    gin = channel_groups(cin, groups)
    g2, g1 = channel_groups(2 * width, groups, halves=2), channel_groups(width, groups)
    mask = "A" if first else "B"
    self.first = first
    self.v_conv = CausalConv(cin, 2 * width, (half, k), in_groups=gin, out_groups=g2, mask_type=None,
                             full_rows=True, rngs=rngs)
    self.v_to_h = CausalConv(2 * width, 2 * width, (1, 1), in_groups=g2, out_groups=g2, mask_type=None,
                             full_rows=False, rngs=rngs)
    self.h_conv = CausalConv(cin, 2 * width, (1, half), in_groups=gin, out_groups=g2, mask_type=mask,
                             full_rows=False, rngs=rngs)
    self.h_out = CausalConv(width, width, (1, 1), in_groups=g1, out_groups=g1, mask_type="B",
                            full_rows=False, rngs=rngs)

  def __call__(self, v: jax.Array, h: jax.Array):
    v_pre = self.v_conv(v)
    h_pre = self.h_conv(h) + self.v_to_h(shift_down(v_pre))
    h_new = self.h_out(_gate(h_pre))
    return _gate(v_pre), h_new if self.first else h + h_new


class PixelCNN(nnx.Module):
  """Gated PixelCNN on uint8 (or integer-valued float) images [B, H, W, C]: `(logits [B, H, W, C,
  256] float32, {"pooled": [B, width] mean of the last horizontal stack, "block<i>": [B, H, W, width]})`.

  Args:
    channels: C, the image channels (one colour group each).
    width: features per stack (a multiple of `channels`).
    depth: gated blocks after the first (mask A, `first_kernel_size`) one.
    kernel_size: odd window width of the later blocks.
    first_kernel_size: odd window width of the first (mask A) block.
    head_dim: features of the head's hidden 1x1 layer (a multiple of `channels`).
  """

  def __init__(self, channels: int, width: int = 64, depth: int = 5, kernel_size: int = 3,
               first_kernel_size: int = 7, head_dim: int = 256, *, rngs: nnx.Rngs):
    self.channels, self.num_features = channels, width
    blocks = [GatedBlock(channels, width, first_kernel_size, channels, first=True, rngs=rngs)]
    blocks += [GatedBlock(width, width, kernel_size, channels, first=False, rngs=rngs) for _ in range(depth)]
    self.blocks = nnx.List(blocks)
    g1, gh = channel_groups(width, channels), channel_groups(head_dim, channels)
    self.head1 = CausalConv(width, head_dim, (1, 1), in_groups=g1, out_groups=gh, mask_type="B",
                            full_rows=False, rngs=rngs)
    self.head2 = CausalConv(head_dim, channels * LEVELS, (1, 1), in_groups=gh,
                            out_groups=channel_groups(channels * LEVELS, channels), mask_type="B",
                            full_rows=False, rngs=rngs)

  def __call__(self, images: jax.Array, train: bool = False):
    x = images.astype(jnp.float32) * (2.0 / (LEVELS - 1)) - 1.0  # [0, 255] -> [-1, 1]
    v = h = x
    features = {}
    for i, block in enumerate(self.blocks):
      v, h = block(v, h)
      features[f"block{i + 1}"] = h
    features["pooled"] = jnp.mean(h, axis=(1, 2))
    out = self.head2(jax.nn.relu(self.head1(jax.nn.relu(h))))
    b, hh, ww, _ = out.shape
    return out.reshape(b, hh, ww, self.channels, LEVELS).astype(jnp.float32), features

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self(images, train=train)[1]["pooled"]


def sample(model: PixelCNN, key: jax.Array, canvas: jax.Array, temperature: float = 1.0) -> jax.Array:
  """Draws images [B, H, W, C] int32 one sub-pixel at a time in raster order, compiled as one
  `lax.fori_loop` over the H * W * C sub-pixels (each step runs the network on the canvas so far
  and samples the next sub-pixel from its 256 logits); `canvas` [B, H, W, C] gives the shape and
  sharding (its values are overwritten). Sub-pixel t draws from `fold_in(key, t)`."""
  b, height, width, channels = canvas.shape
  canvas = jnp.zeros_like(canvas, jnp.int32)

  def step(t, canvas):
    row, col, ch = t // (width * channels), (t // channels) % width, t % channels
    logits, _ = model(canvas, train=False)
    here = lax.dynamic_slice(logits, (0, row, col, ch, 0), (b, 1, 1, 1, LEVELS)).reshape(b, LEVELS)
    value = jax.random.categorical(jax.random.fold_in(key, t), here / temperature).astype(jnp.int32)
    return lax.dynamic_update_slice(canvas, value.reshape(b, 1, 1, 1), (0, row, col, ch))

  return lax.fori_loop(0, height * width * channels, step, canvas)
