"""Where `train.conv_impl='auto'` switches to im2col: one 3x3 convolution's forward + both gradients,
XLA:CPU's against `sslax.models.conv.im2col_conv`, over input sizes; compile seconds and the
median of 5 steps. Behind `sslax.models.conv._AUTO_MIN_ELEMENTS`.

  python experiments/conv_auto_threshold.py
"""
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sslax.models.conv import im2col_conv

SHAPES = [(16, 8, 16), (32, 8, 32), (64, 8, 32), (32, 16, 32), (64, 16, 64), (128, 16, 64), (32, 32, 64),
          (128, 32, 64)]  # (batch, height = width, channels in = out)


def grads_fn(conv):
  def loss(x, w):
    return jnp.sum(conv(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")) ** 2)
  return jax.jit(jax.grad(loss, argnums=(0, 1)))


def main():
  print(f"# {jax.devices()[0].device_kind} ({jax.default_backend()})")
  print("| input N x H x W x C | elements | compile s XLA / im2col | ms XLA / im2col | im2col speed-up |")
  print("|---|---|---|---|---|")
  for n, hw, c in SHAPES:
    x, w = jnp.ones((n, hw, hw, c)), jnp.full((3, 3, c, c), 0.01)
    res = []
    for conv in (lax.conv_general_dilated, im2col_conv):
      t = time.perf_counter()
      g = grads_fn(conv)
      jax.block_until_ready(g(x, w))
      compile_s = time.perf_counter() - t
      times = []
      for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(g(x, w))
        times.append(time.perf_counter() - t)
      res.append((compile_s, float(np.median(times))))
    (cx, sx), (ci, si) = res
    print(f"| {n} x {hw} x {hw} x {c} | {x.size:,} | {cx:.2f} / {ci:.2f} | {sx * 1e3:.1f} / {si * 1e3:.1f} "
          f"| {sx / si:.2f}x |", flush=True)


if __name__ == "__main__":
  main()
