"""What a checkpoint manifest costs per save: a listing (sizes) against reading every file back (SHA-256).

  python experiments/manifest_cost.py [--config experiments/simclr_cifar10.py:full]

Saves the recipe's freshly initialized train state once (Orbax, as `sslax train` does) into a
temporary folder, then times `write_manifest` on the committed step with and without checksums,
three times each (the files are in the page cache after the first read, as right after a save).
On an object store the checksum pass is a network read of every host's shards, which is why
`train.checkpoint_hashes='auto'` records sizes only there.
"""
import argparse
import os
import platform
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "simclr_cifar10.py:full"))
  args = p.parse_args(argv)
  import jax

  from sslax.config import load_config
  from sslax.methods import make_method
  from sslax.train.checkpoint import Checkpointer, write_manifest
  from sslax.train.mesh import make_mesh
  from sslax.train.state import abstract_train_state, build_optimizer, init_train_state

  config = load_config(args.config)
  method = make_method(config)
  optimizer = build_optimizer(method, config, 1000)
  mesh = make_mesh({"data": -1})
  _, shardings = abstract_train_state(method, optimizer, config.seed, mesh, config.get("sharding"))
  state = init_train_state(method, optimizer, config.seed, shardings)
  nbytes = sum(x.nbytes for x in jax.tree.leaves(state))
  with tempfile.TemporaryDirectory() as d:
    ckpt = Checkpointer(d, save_every=1, async_save=False, hashes="size")
    ckpt.save(state, _Iterator(), step=1, force=True)
    ckpt.close()
    step_dir = os.path.join(d, "checkpoints", "1")
    files = sum(len(names) for _, _, names in os.walk(step_dir))
    rows = {}
    for hashes in (False, True):
      times = []
      for _ in range(3):
        t = time.perf_counter()
        write_manifest(step_dir, hashes=hashes)
        times.append(time.perf_counter() - t)
      rows["sha256" if hashes else "size"] = min(times)
  print(f"{_cpu()}, {os.cpu_count()} cores; state {nbytes / 2**20:.1f} MiB in {files} files")
  for name, t in rows.items():
    print(f"manifest with {name}: {1e3 * t:.1f} ms")
  print(f"ratio sha256 / size: {rows['sha256'] / rows['size']:.0f}x")


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


class _Iterator:
  """The data item of a checkpoint needs a grain iterator; a stand-in with a state to save."""

  def get_state(self):
    return b"{\"position\": 0}"

  def set_state(self, state):
    pass


if __name__ == "__main__":
  main()
