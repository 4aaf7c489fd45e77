"""Memory and time of NT-Xent's forward + backward against batch size, dense vs blockwise.

For each batch N (2N embeddings of dimension D), the gradient of
`nt_xent_loss` is compiled for this machine's first device; the compiler's
temporary memory (`memory_analysis().temp_size_in_bytes`) is the peak working
memory of the step beyond its inputs and outputs. The step is timed (median of
`--repeats` after one warm-up) only when its temporaries fit under
`--max_run_gib`; the dense form stops fitting first. Loss and gradients of the
two forms are compared wherever both run.

  python experiments/blockwise_infonce.py --batches 1024 2048 4096 8192 16384 32768 --block 1024
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from sslax.losses import nt_xent_loss


def step_fn(block):
  return jax.jit(jax.value_and_grad(
      lambda a, b: nt_xent_loss(a, b, temperature=0.2, block_size=block)[0], argnums=(0, 1)))


def measure(n, dim, block, max_run_gib, repeats):
  f = step_fn(block)
  spec = jax.ShapeDtypeStruct((n, dim), jnp.float32)
  compiled = f.lower(spec, spec).compile()
  temp = compiled.memory_analysis().temp_size_in_bytes
  row = {"batch": n, "rows": 2 * n, "block": block, "temp_bytes": int(temp), "seconds": None, "out": None}
  if temp / 2**30 <= max_run_gib:
    k1, k2 = jax.random.split(jax.random.key(n))
    z1, z2 = jax.random.normal(k1, (n, dim)), jax.random.normal(k2, (n, dim))
    out = jax.block_until_ready(compiled(z1, z2))
    times = []
    for _ in range(repeats):
      t = time.perf_counter()
      jax.block_until_ready(compiled(z1, z2))
      times.append(time.perf_counter() - t)
    row["seconds"] = float(np.median(times))
    row["out"] = out
  return row


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batches", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 32768])
  p.add_argument("--dim", type=int, default=128)
  p.add_argument("--block", type=int, default=1024)
  p.add_argument("--max_run_gib", type=float, default=8.0, help="run (time) a step only below this")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--output", default=None, help="write the rows as JSON here")
  a = p.parse_args()
  print(f"device: {jax.devices()[0].device_kind}, D = {a.dim}, block = {a.block}")
  print("| batch N (2N rows) | dense temp memory | blockwise temp memory | dense s/step | blockwise s/step | "
        "blockwise / dense time | max |grad diff| |")
  print("|---|---|---|---|---|---|---|")
  rows = []
  for n in a.batches:
    dense = measure(n, a.dim, None, a.max_run_gib, a.repeats)
    block = measure(n, a.dim, a.block, a.max_run_gib, a.repeats)
    diff = ratio = None
    if dense["out"] is not None and block["out"] is not None:
      diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(dense["out"][1], block["out"][1]))
      ratio = block["seconds"] / dense["seconds"]
    fmt = lambda r: f"{r['seconds']:.3f}" if r["seconds"] is not None else "not run (over --max_run_gib)"
    print(f"| {n:,} ({2 * n:,}) | {dense['temp_bytes'] / 2**20:,.1f} MiB | {block['temp_bytes'] / 2**20:,.1f} MiB | "
          f"{fmt(dense)} | {fmt(block)} | {'' if ratio is None else f'{ratio:.2f}'} | "
          f"{'' if diff is None else f'{diff:.1e}'} |", flush=True)
    for r in (dense, block):
      r.pop("out")
      rows.append(r)
  if a.output:
    with open(a.output, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
