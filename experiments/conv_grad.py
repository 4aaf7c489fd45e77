"""Per-layer convolution timings of a CIFAR ResNet-18 step: XLA's weight gradient, sslax's im2col one, PyTorch.

For each distinct convolution of ResNet-18 with the CIFAR stem (batch 128 = SimCLR's two views of
64 images), times the forward pass, the input gradient and the weight gradient with
`lax.conv_general_dilated` (XLA) and with `sslax.models.conv.im2col_conv`, and,
when PyTorch is installed, the same three in PyTorch (channels-last tensors, oneDNN on CPU), in
the same process. Totals weight each layer by how often it occurs in ResNet-18.

  python experiments/conv_grad.py              # CPU, float32
  python experiments/conv_grad.py --batch 32 --repeats 3

Ratios are what to compare: absolute times depend on the machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
from jax import lax

from sslax.models.conv import im2col_conv

# (spatial size, in channels, out channels, kernel, stride, count in ResNet-18 with the CIFAR stem)
LAYERS = [(32, 3, 64, 3, 1, 1), (32, 64, 64, 3, 1, 4), (32, 64, 128, 3, 2, 1), (32, 64, 128, 1, 2, 1),
          (16, 128, 128, 3, 1, 3), (16, 128, 256, 3, 2, 1), (16, 128, 256, 1, 2, 1),
          (8, 256, 256, 3, 1, 3), (8, 256, 512, 3, 2, 1), (8, 256, 512, 1, 2, 1), (4, 512, 512, 3, 1, 3)]


def _median_ms(fn, repeats):
  fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return 1e3 * statistics.median(times)


def jax_times(batch, size, cin, cout, k, s, repeats):
  x = jax.random.normal(jax.random.key(0), (batch, size, size, cin))
  w = jax.random.normal(jax.random.key(1), (k, k, cin, cout)) * 0.05
  pad = "SAME" if k > 1 else "VALID"
  dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))

  def conv(impl):
    return lambda x, w: impl(x, w, (s, s), pad, dimension_numbers=dn)
  g = jax.random.normal(jax.random.key(2), conv(lax.conv_general_dilated)(x, w).shape)
  out = {}
  run = lambda f, *a: (lambda: jax.block_until_ready(f(*a)))
  for name, impl in (("xla", lax.conv_general_dilated), ("im2col", im2col_conv)):
    fwd = jax.jit(conv(impl))
    dx = jax.jit(lambda x, w, g, impl=impl: jax.vjp(lambda x_: conv(impl)(x_, w), x)[1](g)[0])
    dw = jax.jit(lambda x, w, g, impl=impl: jax.vjp(lambda w_: conv(impl)(x, w_), w)[1](g)[0])
    out[f"fwd_{name}"] = _median_ms(run(fwd, x, w), repeats)
    out[f"dx_{name}"] = _median_ms(run(dx, x, w, g), repeats)
    out[f"dw_{name}"] = _median_ms(run(dw, x, w, g), repeats)
  return out


def torch_times(torch, batch, size, cin, cout, k, s, repeats):
  x = torch.randn(batch, cin, size, size).to(memory_format=torch.channels_last)
  conv = torch.nn.Conv2d(cin, cout, k, s, padding=(k - 1) // 2, bias=False).to(memory_format=torch.channels_last)
  g = torch.randn_like(conv(x))
  xg = x.clone().requires_grad_(True)

  def grad(inputs):
    def fn():
      torch.autograd.grad(conv(inputs[0]), inputs[1:], g)
    return fn
  with torch.no_grad():
    fwd = _median_ms(lambda: conv(x), repeats)
  dw = _median_ms(grad([x, conv.weight]), repeats)  # forward + dw
  dx = _median_ms(grad([xg, xg]), repeats)  # forward + dx
  return {"fwd": fwd, "dx": dx - fwd, "dw": dw - fwd}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--repeats", type=int, default=5)
  args = p.parse_args(argv)
  try:
    import torch
    torch.set_num_threads(os.cpu_count())
  except ImportError:
    torch = None
  print(f"# {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} cores, batch {args.batch}, "
        f"float32, medians of {args.repeats}; ms per call" + ("" if torch else "; PyTorch not installed"))
  print("| layer (HxW, Cin->Cout, k/s) x count | XLA fwd / dx / dW | sslax im2col fwd / dx / dW "
        "| PyTorch fwd / dx / dW |")
  print("|---|---|---|---|")
  tot = {}
  for size, cin, cout, k, s, count in LAYERS:
    r = jax_times(args.batch, size, cin, cout, k, s, args.repeats)
    t = torch_times(torch, args.batch, size, cin, cout, k, s, args.repeats) if torch else None
    for key, v in list(r.items()) + [("torch_" + kk, vv) for kk, vv in (t or {}).items()]:
      tot[key] = tot.get(key, 0.0) + count * v
    theirs = f"{t['fwd']:.1f} / {t['dx']:.1f} / {t['dw']:.1f}" if t else "-"
    ours = lambda impl: " / ".join(f"{r[f'{part}_{impl}']:.1f}" for part in ("fwd", "dx", "dw"))
    print(f"| {size}x{size}, {cin}->{cout}, {k}/{s} x{count} | {ours('xla')} | {ours('im2col')} | {theirs} |",
          flush=True)
  theirs = (f"{tot['torch_fwd']:.0f} / {tot['torch_dx']:.0f} / {tot['torch_dw']:.0f}" if torch else "-")
  ours = lambda impl: " / ".join(f"{tot[f'{part}_{impl}']:.0f}" for part in ("fwd", "dx", "dw"))
  print(f"| **ResNet-18 total** | {ours('xla')} | {ours('im2col')} | {theirs} |")
  return tot


if __name__ == "__main__":
  main()
