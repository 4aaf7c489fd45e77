"""The `sslax plan` table of RESULTS.md: every `full` recipe compiled for TPU slices, data parallel and FSDP.

  python experiments/plan_table.py --output runs/plan [--topology v5e:4x4 --topology v5p:2x2x4 ...]

Each (recipe, topology, sharding) is compiled once from this CPU machine
(`sslax.train.plan.plan`, needs jax[tpu]); reports are written to
`<output>/<recipe>_<topology>_<sharding>.json` as they come (a rerun skips
those present) and the markdown table is printed at the end.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

RECIPES = {  # name: (config, what one example counts as, topologies: None = all of --topology)
    "SimCLR ResNet-18 CIFAR-10": ("simclr_cifar10.py:full", "image", None),
    "DINO ResNet-18 CIFAR-10 (2+6 crops)": ("dino_cifar10.py:full", "image", None),
    "BERT-base MLM (128 tokens)": ("bert_text.py:full", "token", None),
    "GPT-2 small (1024 tokens)": ("gpt_text.py:full", "token", None),
    "wav2vec 2.0 BASE (15.6 s crops)": ("wav2vec2_fsdd.py:full", "frame", None),
    # the other CIFAR-10 recipes are the same ResNet-18 with another head and loss: one slice each
    "BYOL ResNet-18 CIFAR-10": ("byol_cifar10.py:full", "image", ("v5e:4x4",)),
    "MoCo v2+ ResNet-18 CIFAR-10": ("moco_cifar10.py:full", "image", ("v5e:4x4",)),
    "SimSiam ResNet-18 CIFAR-10": ("simsiam_cifar10.py:full", "image", ("v5e:4x4",)),
    "VICReg ResNet-18 CIFAR-10": ("vicreg_cifar10.py:full", "image", ("v5e:4x4",)),
    "Barlow Twins ResNet-18 CIFAR-10": ("barlow_twins_cifar10.py:full", "image", ("v5e:4x4",)),
}
FSDP_RULES = "(('.*', 'fsdp'),)"
# how the state is laid out: overrides per name. hsdp: FSDP within groups of 4 neighbouring chips
# (one host's), data parallel across the groups; the batch is split over both mesh axes. (A config's
# mesh axes come in alphabetical order, ConfigDict's: ('data', 'fsdp') makes 'fsdp' the minor axis.)
SHARDINGS = {"replicated": [], "fsdp": [f"sharding.rules={FSDP_RULES}"],
             "hsdp": [f"sharding.rules={FSDP_RULES}", "mesh={'data': -1, 'fsdp': 4}", "sharding.axis='fsdp'"]}


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--output", default="runs/plan")
  p.add_argument("--topology", action="append")
  p.add_argument("--fsdp_topology", action="append", help="topologies also planned with FSDP")
  p.add_argument("--table_only", action="store_true", help="print the table of the reports present, compile none")
  p.add_argument("--recipe", action="append", help="only recipes whose name contains this (default: all)")
  p.add_argument("--sharding", action="append", choices=sorted(SHARDINGS),
                 help="layouts planned on --fsdp_topology (default: replicated and fsdp)")
  args = p.parse_args(argv)
  topologies = args.topology or ["v5e:4x4", "v4:2x2x4", "v5p:2x2x4"]
  fsdp_topologies = args.fsdp_topology or ["v5e:4x4"]
  os.makedirs(args.output, exist_ok=True)
  here = os.path.dirname(os.path.abspath(__file__))
  from sslax.config import apply_overrides, load_config
  from sslax.train.plan import plan

  rows = []
  layouts = tuple(args.sharding or ("replicated", "fsdp"))
  for name, (config_name, unit, only) in RECIPES.items():
    if args.recipe and not any(r in name for r in args.recipe):
      continue
    for topology in (t for t in topologies if only is None or t in only):
      for sharding in (layouts if topology in fsdp_topologies and only is None else ("replicated",)):
        path = os.path.join(args.output, f"{config_name.split('.')[0]}_{topology.replace(':', '-')}_{sharding}.json")
        if not os.path.exists(path) and args.table_only:
          continue
        config = load_config(os.path.join(here, config_name))
        if not os.path.exists(path):
          apply_overrides(config, SHARDINGS[sharding])
          report = plan(config, topology)
          with open(path, "w") as f:
            json.dump(report, f, indent=1)
          print(f"{name} {topology} {sharding}: fits={report['fits']}", flush=True)
        with open(path) as f:
          rows.append((name, unit, sharding, json.load(f), recipe_steps(config)))
  print("| recipe | topology | state | fits | memory per chip (of HBM) | step (roofline) | MFU | per chip per second "
        "| the recipe's steps |")
  print("|---|---|---|---|---|---|---|---|---|")
  for name, unit, sharding, r, steps in rows:
    head = f"| {name} | {r['topology']} ({r['devices']} chips), batch {r['global_batch']} | {sharding} |"
    if not r["fits"]:
      print(f"{head} no | {r['compiler'][:80]} | | | |")
      continue
    m, t = r["memory"], r["time"]
    rate = r["examples_per_sec_per_chip"] if unit == "image" else r["tokens_per_sec_per_chip"]
    unit_name = {"image": "images", "token": "tokens", "frame": "frames"}[unit]
    hours = steps * t["step"] / 3600
    print(f"{head} yes | {m['total'] / 2**30:.2f} GiB ({100 * m['fraction_of_hbm']:.0f}%) | "
          f"{1e3 * t['step']:.1f} ms | {100 * r['mfu']:.0f}% | {rate:,.0f} {unit_name} | "
          f"{steps:,} in {hours:.1f} h |")


TRAIN_EXAMPLES = {"cifar10": 50_000}


def recipe_steps(config) -> int:
  """The recipe's number of steps: train.num_steps, or its epochs of the dataset's training split."""
  if config.train.num_steps:
    return int(config.train.num_steps)
  return int(config.train.num_epochs * TRAIN_EXAMPLES[config.data.name] // config.train.batch_size)


if __name__ == "__main__":
  sys.exit(main())
