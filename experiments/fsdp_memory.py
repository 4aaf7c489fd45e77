"""Train-state bytes per device under data parallelism and FSDP (`sharding.rules`), for a config.

  python experiments/fsdp_memory.py --config experiments/simclr_cifar10.py:full --devices 8

Builds the config's TrainState (parameters, optimizer state with any EMA target,
method state) on `--devices` host devices and reports what one device holds with
every leaf replicated and with `(('.*', 'fsdp'),)`, initialized as `sslax train` does
(`init_train_state`: under FSDP one jit whose outputs are the shards), and what that
compiled init needs per device (outputs + temporaries) against the whole state: the
eager init it replaced built the whole state on one device first. Nothing is trained:
these are the arrays the step takes in and gives back, not activations.
"""
import argparse
import json
import os
import sys


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--config", required=True)
  p.add_argument("--devices", type=int, default=8)
  args = p.parse_args(argv)
  os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices}"
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  import jax
  import ml_collections

  from sslax.config import load_config
  from sslax.methods import make_method
  from sslax.train import build_optimizer, create_train_state, make_mesh
  from sslax.train.state import abstract_train_state, init_train_state

  config = load_config(args.config)
  method = make_method(config)
  optimizer = build_optimizer(method, config, 1000)
  mesh = make_mesh({"data": -1})
  device = jax.devices()[0]
  out = {"config": args.config, "devices": args.devices}
  for name, rules in (("replicated", ()), ("fsdp", ((".*", "fsdp"),))):
    sharding = ml_collections.ConfigDict({"rules": rules, "axis": "data", "min_size": 0})
    abstract, shardings = abstract_train_state(method, optimizer, config.seed, mesh, sharding)
    placed = init_train_state(method, optimizer, config.seed, shardings)  # sharded init under fsdp
    out[f"{name}_bytes_per_device"] = sum(s.data.nbytes for leaf in jax.tree.leaves(placed)
                                          for s in leaf.addressable_shards if s.device == device)
    del placed
    if name == "fsdp":  # what the sharded init needs per device at its peak: its outputs and temporaries
      build = lambda: create_train_state(method, optimizer, config.seed)  # noqa: E731
      memory = jax.jit(build, out_shardings=shardings).lower().compile().memory_analysis()
      out["fsdp_init_output_bytes_per_device"] = int(memory.output_size_in_bytes)
      out["fsdp_init_temp_bytes_per_device"] = int(memory.temp_size_in_bytes)
      out["largest_leaf_bytes"] = max(int(x.size) * x.dtype.itemsize for x in jax.tree.leaves(abstract))
      out["whole_state_bytes"] = sum(int(x.size) * x.dtype.itemsize for x in jax.tree.leaves(abstract))
  out["ratio"] = out["replicated_bytes_per_device"] / out["fsdp_bytes_per_device"]
  print(json.dumps(out, indent=2))


if __name__ == "__main__":
  sys.exit(main())
