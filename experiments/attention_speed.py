"""One layer's attention, forward and forward + backward, per kernel of `sslax.models.attention`
against PyTorch's `scaled_dot_product_attention` on the same inputs, interleaved round by round.

  python experiments/attention_speed.py                      # the bench's GPT / BERT layer: 32 x 128, 6 heads of 32
  python experiments/attention_speed.py --batch 16 --length 1024 --heads 12 --head_dim 64 --blocks 128 256

Rows: causal (GPT: `is_causal=True` in PyTorch) and packed segments (BERT: a [B, T, T] boolean
mask in both). Median milliseconds of `--repeats` calls after one warm-up; the ratio is PyTorch's
time over each kernel's (> 1: faster than PyTorch).
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from conv_grad import _median_ms  # noqa: E402  (median ms of repeated calls after one warm-up)
from sslax.bench import cpu_description  # noqa: E402
from sslax.models.attention import attention  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--length", type=int, default=128)
  p.add_argument("--heads", type=int, default=6)
  p.add_argument("--head_dim", type=int, default=32)
  p.add_argument("--blocks", type=int, nargs="+", default=[32, 64])
  p.add_argument("--repeats", type=int, default=9)
  args = p.parse_args(argv)
  import torch

  torch.set_num_threads(os.cpu_count())
  b, t, h, d = args.batch, args.length, args.heads, args.head_dim
  rng = np.random.default_rng(0)
  q, k, v, g = (rng.standard_normal((b, t, h, d)).astype(np.float32) for _ in range(4))
  segments = np.sort(rng.integers(1, 4, (b, t)), axis=1)
  packed = segments[:, :, None] == segments[:, None, :]
  jq, jk, jv, jg = map(jnp.asarray, (q, k, v, g))
  tq, tk, tv = (torch.tensor(x).transpose(1, 2).contiguous().requires_grad_() for x in (q, k, v))
  tg = torch.tensor(g).transpose(1, 2)
  info = cpu_description()
  print(f"# {info['cpu_model']} [{info['isa']}], {os.cpu_count()} cores, jax {jax.__version__}, torch "
        f"{torch.__version__}; [B, T, H, Dh] = [{b}, {t}, {h}, {d}], float32, median of {args.repeats}")
  print("| mask | kernel | fwd ms | fwd + bwd ms | PyTorch fwd + bwd ms | ratio (fwd + bwd) |")
  print("|---|---|---|---|---|---|")
  for label, causal, mask in (("causal", True, None), ("packed segments", False, packed)):
    jmask = None if mask is None else jnp.asarray(mask)
    tmask = None if mask is None else torch.tensor(mask)[:, None]

    def torch_fwd(backward):
      out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask, is_causal=causal)
      if backward:
        out.backward(tg)
    kernels = [("xla", 64)] + [("blocked", blk) for blk in args.blocks]
    for impl, blk in kernels:
      f = lambda q, k, v: attention(q, k, v, jmask, causal=causal, impl=impl, block=blk)
      fwd = jax.jit(f)
      both = jax.jit(lambda q, k, v: jax.vjp(f, q, k, v)[1](jg))
      ms_f = _median_ms(lambda: jax.block_until_ready(fwd(jq, jk, jv)), args.repeats)
      ms_b = _median_ms(lambda: jax.block_until_ready(both(jq, jk, jv)), args.repeats)
      ms_t = _median_ms(lambda: torch_fwd(True), args.repeats)  # re-timed beside each kernel: drifts hit both
      name = impl if impl == "xla" else f"blocked {blk}"
      print(f"| {label} | {name} | {ms_f:,.1f} | {ms_b:,.1f} | {ms_t:,.1f} | **{ms_t / ms_b:.2f}x** |", flush=True)


if __name__ == "__main__":
  main()
