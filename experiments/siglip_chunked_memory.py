"""Memory of SigLIP's loss and gradients, dense against chunked across devices (`sslax.losses.sigmoid`):
XLA's compiled temporary bytes per device, on 8 host CPU devices, for growing global batches.

  python experiments/siglip_chunked_memory.py [--dim 128] [--batches 1024 4096 16384 65536]

The dense loss builds the global [N, N] logits (and, for the gradient, their sigmoid); the chunked
one a [N/8, N/8] block per device at a time. Same loss and gradients (tests/test_image_text.py).
"""
import argparse
import json
import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

from sslax.losses.sigmoid import siglip_loss, siglip_loss_chunked  # noqa: E402


def temp_bytes(fn, *args) -> int:
  compiled = jax.jit(jax.grad(lambda *a: fn(*a)[0], argnums=(0, 1))).lower(*args).compile()
  return int(compiled.memory_analysis().temp_size_in_bytes)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--dim", type=int, default=128)
  parser.add_argument("--batches", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
  args = parser.parse_args()
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  sharding = NamedSharding(mesh, P("data"))
  rows = []
  for n in args.batches:
    x = jax.ShapeDtypeStruct((n, args.dim), jnp.float32, sharding=sharding)
    dense = temp_bytes(lambda a, b: siglip_loss(a, b, scale=10.0, bias=-10.0), x, x)
    chunked = temp_bytes(lambda a, b: siglip_loss_chunked(a, b, scale=10.0, bias=-10.0, mesh=mesh), x, x)
    rows.append({"global_batch": n, "dense_temp_mib": dense / 2**20, "chunked_temp_mib": chunked / 2**20,
                 "ratio": dense / max(chunked, 1)})
    print(json.dumps(rows[-1]))
  print("| global batch | dense, MiB per device | chunked, MiB per device | dense / chunked |")
  print("|---|---|---|---|")
  for r in rows:
    print(f"| {r['global_batch']} | {r['dense_temp_mib']:.1f} | {r['chunked_temp_mib']:.1f} | {r['ratio']:.1f} |")


if __name__ == "__main__":
  main()
