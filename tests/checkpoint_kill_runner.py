"""Saves checkpoints back to back until killed, for the kill -9 tests.

  python tests/checkpoint_kill_runner.py <workdir> <async: 0|1>

Step s holds arrays filled with s, so a restore shows which step it got and
that its bytes are that step's. Prints `ready` before the first save and
`committed <s>` once step s is committed (manifest written).
"""
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import grain  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import struct  # noqa: E402

from sslax.train.checkpoint import Checkpointer  # noqa: E402


@struct.dataclass
class Tiny:
  step: jnp.ndarray
  params: dict


def state_at(step: int) -> Tiny:
  return Tiny(step=jnp.asarray(step, jnp.int32),
              params={f"w{i}": jnp.full((1024, 1024), step, jnp.float32) for i in range(4)})


def data_iterator():
  return iter(grain.MapDataset.range(10_000).to_iter_dataset())


def main():
  workdir, use_async = sys.argv[1], sys.argv[2] == "1"
  ckpt = Checkpointer(workdir, save_every=1, max_to_keep=2, async_save=use_async)
  start = (ckpt.latest_step() or 0) + 1
  it = data_iterator()
  print("ready", flush=True)
  for step in range(start, start + 100_000):
    next(it)
    ckpt.save(state_at(step), it, force=True)
    # an async save of `step` returned after committing `step - 1` (save joins the previous commit)
    print(f"committed {step - 1 if use_async else step}", flush=True)


if __name__ == "__main__":
  main()
