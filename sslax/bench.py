"""`sslax bench`: sslax's train step against a PyTorch reference, side by side on this machine.

For each workload the real sslax step (`make_train_step` on the recipe's
config: on-device augmentation or masking, loss, gradients, optimizer, EMA,
non-finite guard) and the PyTorch reference of `bench_torch.py` (same model,
loss and optimizer; its inputs prepared once, outside the timed step) run
interleaved after warm-up: round r times `--steps` sslax steps, then
`--steps` PyTorch steps (A B A B ...), so drifts in clock or load hit both.
Reported: median seconds per step, examples/s, the ratio sslax / PyTorch in
steps per second (> 1: sslax is faster), the step's FLOPs from XLA's cost
analysis of the compiled step, and the share of this machine's matmul peak
(measured here, in the same run, as the best of JAX and PyTorch on square
matrix products) that each side reaches with those FLOPs.

  sslax bench                                   # every workload, float32, CPU (from a checkout)
  sslax bench --workloads bert --compute_dtype bfloat16 --output runs/bench/bf16.json
  sslax bench --config my_config.py:smoke       # any config, from an installed wheel
  sslax bench --workloads gpt --torch_compile   # PyTorch under torch.compile as a row of its own

The header line and the JSON's "info" name the machine: CPU model and vector ISA (from
/proc/cpuinfo), core count, XLA_FLAGS, versions and the matmul peak measured in the run.

The sslax half lives here, in the package; the workloads' configs are the
recipes under a checkout's `experiments/` (`--experiments`, default
./experiments) or any `--config`; the PyTorch references are
`experiments/bench_torch.py` (`--references`), which need the `[hf]` extra
(torch, transformers). Without references, the sslax side is timed alone.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

# --variant -> workload -> (config spec, overrides). cpu: ResNet-18 at batch 64 and the 4 x 192
# Transformers of the cpu recipes (seconds per step on 2 cores). full: the published recipes'
# models (ResNet-18 batch 256, BERT-base 128 x 128 tokens, GPT-2 small 16 x 1,024) for accelerators.
# SGD replaces LARS (PyTorch has no LARS); BERT-base without NSP and with every position through
# the vocabulary, as BertForMaskedLM.
RECIPES = {
    "cpu": {
        "simclr": ("simclr_cifar10.py:full", ["train.batch_size=64", "optim.name='sgd'", "train.num_steps=1000"]),
        "byol": ("byol_cifar10.py:full", ["train.batch_size=64", "optim.name='sgd'", "train.num_steps=1000"]),
        "bert": ("bert_text.py:cpu", ["data.seq_len=128", "train.batch_size=32"]),  # the shapes of the figures
        "gpt": ("gpt_text.py:cpu", []),
    },
    "full": {
        "simclr": ("simclr_cifar10.py:full", ["optim.name='sgd'", "train.num_steps=1000"]),
        "byol": ("byol_cifar10.py:full", ["optim.name='sgd'", "train.num_steps=1000"]),
        "bert": ("bert_text.py:full", ["train.batch_size=128", "method.nsp=False", "method.max_predictions=0"]),
        "gpt": ("gpt_text.py:full", ["train.batch_size=16"]),
    },
}


def experiments_dir(path: str | None = None) -> str:
  """`path`, or $SSLAX_EXPERIMENTS, or ./experiments: where the recipes' configs are."""
  return path or os.environ.get("SSLAX_EXPERIMENTS") or os.path.join(os.getcwd(), "experiments")


def _config(name, variant, batch, compute_dtype, extra, experiments=None, spec=None):
  """The config of workload `name` (a recipe of `variant`), or of `spec` (any config file)."""
  from sslax.config import apply_overrides, load_config

  if spec is None:
    spec, overrides = RECIPES[variant][name]
    path = os.path.join(experiments_dir(experiments), spec)
    if not os.path.exists(path.rsplit(":", 1)[0]):
      raise ValueError(f"--experiments: expected the folder of the recipes' configs ({spec}), found none at "
                       f"{os.path.dirname(path)}; pass --experiments DIR, or --config for a config of your own")
  else:
    path, overrides = spec, []
  config = load_config(path)
  overrides = list(overrides) + [f"train.compute_dtype='{compute_dtype}'"] + list(extra)
  if batch:
    overrides.append(f"train.batch_size={batch}")
  return apply_overrides(config, overrides)


def _synthetic_batch(config, batch_size):
  """A batch of the shapes and dtypes the data pipeline hands the step, random content."""
  from sslax.train.plan import batch_shapes

  rng = np.random.default_rng(0)
  out = {}
  for key, spec in batch_shapes(config, batch_size).items():
    if key == "image":
      out[key] = rng.integers(0, 256, spec.shape, dtype=np.uint8)
    elif key == "ids":
      out[key] = rng.integers(5, config.model.vocab_size, spec.shape).astype(np.int32)
    elif key == "segments":
      out[key] = np.ones(spec.shape, np.int32)  # one example per row: the references' attention
    elif key == "positions":
      out[key] = np.broadcast_to(np.arange(spec.shape[1], dtype=np.int32), spec.shape).copy()
    else:
      out[key] = np.zeros(spec.shape, spec.dtype)
  return out


def step_inputs(config, devices: int = 1):
  """The config's method, optimizer, mesh of `devices` host devices (data parallel), train state and
  a synthetic global batch: what `make_train_step` is built and lowered with."""
  from sslax.data import to_global
  from sslax.methods import make_method
  from sslax.train import create_train_state, make_mesh, state_sharding
  from sslax.train.state import build_optimizer

  mesh = make_mesh({"data": devices}, jax.devices()[:devices])
  method = make_method(config)
  tx = build_optimizer(method, config, int(config.train.num_steps) or 1000)
  state = jax.device_put(create_train_state(method, tx, config.seed), state_sharding(mesh))
  batch = to_global(_synthetic_batch(config, config.train.batch_size), mesh)
  return method, tx, mesh, state, batch


def compiled_step(config):
  """The config's sslax train step compiled for one device, on a synthetic batch:
  (method, optimizer, state, batch, compiled step, seconds the compile took)."""
  from sslax.train import make_train_step

  method, tx, mesh, state, batch = step_inputs(config)
  t = time.perf_counter()
  compiled = make_train_step(method, tx, mesh).lower(state, batch).compile()
  return method, tx, state, batch, compiled, time.perf_counter() - t


def sslax_workload(config):
  """(step(), FLOPs per step) for the sslax step on one device; step() runs one step, returns the loss."""
  method, tx, state, batch, compiled, _ = compiled_step(config)
  holder = {"state": state}

  def step():
    holder["state"], metrics = compiled(holder["state"], batch)
    return metrics["loss"]
  return step, step_flops(method, tx, config, batch, compiled)


def step_flops(method, tx, config, batch, compiled) -> float:
  """FLOPs of one step from XLA's cost analysis of the step compiled for the CPU with XLA's convolutions.

  On GPUs the compiled module hands convolutions and most matmuls to cuDNN / cuBLAS custom calls,
  which the cost analysis does not count (a ResNet step reads as ~2% of its FLOPs); and the cost
  analysis counts a while loop's body once, so the chunked im2col loops of `train.conv_impl`
  ('auto' on the CPU, 'im2col') would be undercounted. So the same step is compiled, abstractly, for
  the host CPU with `train.conv_impl='xla'`, whose cost analysis counts every dot and convolution;
  the FLOPs are those of the program, not of a backend or an implementation. Likewise attention is
  counted as XLA's dense kernel (`model.attention_impl='xla'`): causal attention's masked half
  included, as in the usual MFU accounting."""
  from jax import lax

  from sslax.methods import make_method
  from sslax.models.conv import conv_function
  from sslax.train import create_train_state, make_mesh, make_train_step

  blocked = config.get("model") is not None and config.model.get("attention_impl", "xla") != "xla"
  if jax.default_backend() != "cpu" or conv_function(config.train.conv_impl) is not lax.conv_general_dilated \
      or blocked:
    config = config.copy_and_resolve_references()
    config.train.conv_impl = "xla"
    if blocked:  # the blocked attention maps over heads in a loop, whose body the analysis counts once
      config.model.attention_impl = "xla"
    method = make_method(config)
    mesh = make_mesh({"data": 1}, jax.devices("cpu")[:1])
    state = jax.eval_shape(lambda: create_train_state(method, tx, config.seed))
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
    with jax.default_device(jax.devices("cpu")[0]):
      compiled = make_train_step(method, tx, mesh).lower(state, batch).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def cpu_description() -> dict:
  """{"cpu_model", "isa"} of this machine from /proc/cpuinfo (Linux; "unknown" elsewhere): the vector
  extensions XLA:CPU and PyTorch pick kernels by (AVX-512 and AVX2 machines round float32 apart and
  run at different matmul peaks), so two machines' bench files can be told apart."""
  model, flags = platform.processor() or platform.machine() or "unknown", set()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("unknown", platform.machine()):
          model = value.strip()
        elif key.strip() == "flags" and not flags:
          flags = set(value.split())
  except OSError:
    pass
  isa = [name for name in ("avx512_bf16", "avx512f", "avx2", "fma", "amx_tile", "neon", "asimd") if name in flags]
  return {"cpu_model": model, "isa": " ".join(isa) or "unknown"}


def matmul_peak(device, dtype_name, torch=None, n=None, repeats=10):
  """Best FLOP/s of square matrix products in JAX and (if given) PyTorch on `device`."""
  n = n or (2048 if device == "cpu" else 8192)
  best = {}
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.dtype(dtype_name))
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(f(a))
    times.append(time.perf_counter() - t)
  best["jax"] = 2 * n**3 / min(times)
  if torch is not None:
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    x = torch.randn(n, n, device=dev, dtype=getattr(torch, dtype_name))
    times = []
    for i in range(repeats + 1):
      _sync(torch, dev)
      t = time.perf_counter()
      x @ x
      _sync(torch, dev)
      if i:
        times.append(time.perf_counter() - t)
    best["torch"] = 2 * n**3 / min(times)
  return best


def _sync(torch, dev):
  if dev.type == "cuda":
    torch.cuda.synchronize()


def _timed(fn, sync):
  t = time.perf_counter()
  out = fn()
  sync(out)
  return time.perf_counter() - t


def load_references(path: str | None):
  """The PyTorch references module (`experiments/bench_torch.py`), or None when there is none
  (or `path` is 'none')."""
  import importlib.util

  if path == "none":
    return None
  if path is None:
    path = os.path.join(experiments_dir(), "bench_torch.py")
    if not os.path.exists(path):
      return None
  if not os.path.exists(path):
    raise ValueError(f"--references: expected the path of experiments/bench_torch.py, got {path!r}, which does "
                     "not exist")
  spec = importlib.util.spec_from_file_location("bench_torch", path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # importable by name: torch.compile's tracer looks modules up there
  spec.loader.exec_module(module)
  return module


def run(args):
  """Times every workload: sslax's step, and interleaved with it the PyTorch reference when there
  is one (`--references`); returns the rows it prints."""
  bench_torch = load_references(args.references)
  torch = None
  backend = jax.default_backend()
  info = {"backend": backend, "device": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
          **cpu_description(), "jax": jax.__version__, "compute_dtype": args.compute_dtype,
          "xla_flags": os.environ.get("XLA_FLAGS", "")}
  if bench_torch is None:
    print("# no PyTorch references (experiments/bench_torch.py; --references): timing sslax alone", flush=True)
  else:
    import torch

    tdev = torch.device("cuda" if backend == "gpu" else "cpu")
    if tdev.type == "cpu":
      torch.set_num_threads(os.cpu_count())
    else:  # XLA uses TF32 for float32 matmuls on GPUs by default; let PyTorch do the same
      torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads()})
  autocast = args.compute_dtype == "bfloat16"
  peak = matmul_peak(backend, args.compute_dtype, torch)
  peak_flops = max(peak.values())
  info["matmul_peak_flops"] = peak
  print(f"# {info['device']} ({backend}), {info['cpu_model']} [{info['isa']}], XLA_FLAGS={info['xla_flags']!r}, "
        f"{os.cpu_count()} cores, jax {jax.__version__}, torch "
        f"{info.get('torch', '-')}, {args.compute_dtype}; matmul peak here: " +
        ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peak.items()), flush=True)
  rows = []
  for name, config, spec in _workloads(args):
    if bench_torch is not None and name not in bench_torch.WORKLOADS:
      raise ValueError(f"--config: no PyTorch reference for method {name!r} (expected one of "
                       f"{sorted(bench_torch.WORKLOADS)}); pass --references none to time sslax alone")
    batch = int(config.train.batch_size)
    ours, flops = sslax_workload(config)
    jsync = lambda out: jax.block_until_ready(out)
    sides = [(ours, jsync)]
    tsync = lambda out: (_sync(torch, tdev), float(out.detach()))
    if bench_torch is not None:
      theirs = bench_torch.WORKLOADS[name](config, batch, tdev)
      sides.append((lambda: theirs(autocast), tsync))
      if args.torch_compile:  # a fresh reference (its own model and optimizer) under torch.compile
        fresh = bench_torch.WORKLOADS[name](config, batch, tdev)
        sides.append((torch.compile(lambda: fresh(autocast)), tsync))
    compile_error = None
    for _ in range(args.warmup):
      for i, (fn, sync) in enumerate(sides):
        try:
          _timed(fn, sync)
        except Exception as e:  # noqa: BLE001 - torch.compile needs a working C++ toolchain on the CPU
          if i < 2 or compile_error is not None:
            raise
          compile_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
          print(f"# torch.compile failed for {name} ({compile_error}); timing PyTorch eager only", flush=True)
    if compile_error is not None:
      sides = sides[:2]
    times = [[] for _ in sides]
    for _ in range(args.rounds):  # A B A B ...: drifts in clock or load hit both sides
      for (fn, sync), t in zip(sides, times):
        t += [_timed(fn, sync) for _ in range(args.steps)]
    a = statistics.median(times[0])
    row = {"workload": name, "config": spec, "batch": batch, "flops_per_step": flops, "sslax_s": a,
           "sslax_examples_per_s": batch / a, "sslax_peak_frac": flops / a / peak_flops, "sslax_times": times[0]}
    if bench_torch is None:
      print(f"| {name} | {batch} | {a * 1e3:,.1f} | - | - | {row['sslax_examples_per_s']:,.1f} / - | "
            f"{flops / 1e9:,.1f} | {100 * row['sslax_peak_frac']:.0f}% / - |", flush=True)
    else:
      b = statistics.median(times[1])
      row.update({"torch_s": b, "ratio": b / a, "torch_examples_per_s": batch / b,
                  "torch_peak_frac": flops / b / peak_flops, "torch_times": times[1]})
      print(f"| {name} | {batch} | {a * 1e3:,.1f} | {b * 1e3:,.1f} | **{row['ratio']:.2f}x** | "
            f"{row['sslax_examples_per_s']:,.1f} / {row['torch_examples_per_s']:,.1f} | {flops / 1e9:,.1f} | "
            f"{100 * row['sslax_peak_frac']:.0f}% / {100 * row['torch_peak_frac']:.0f}% |", flush=True)
      if len(times) > 2:
        c = statistics.median(times[2])
        row.update({"torch_compile_s": c, "ratio_torch_compile": c / a, "torch_compile_times": times[2]})
        print(f"| {name} (PyTorch: torch.compile) | {batch} | {a * 1e3:,.1f} | {c * 1e3:,.1f} | "
              f"**{c / a:.2f}x** | {batch / a:,.1f} / {batch / c:,.1f} | {flops / 1e9:,.1f} | "
              f"{100 * row['sslax_peak_frac']:.0f}% / {100 * flops / c / peak_flops:.0f}% |", flush=True)
      elif args.torch_compile:
        row["torch_compile_error"] = compile_error
    rows.append(row)
  _write(args, info, rows)
  return rows


def _workloads(args):
  """(name, config, recipe spec) of every workload: the recipes named by --workloads, then --config."""
  out = [(name, _config(name, args.variant, args.batch_size, args.compute_dtype, args.set, args.experiments),
          RECIPES[args.variant][name][0]) for name in (args.workloads if not args.config or args.workloads_given
                                                        else [])]
  for spec in args.config:
    config = _config(None, None, args.batch_size, args.compute_dtype, args.set, spec=spec)
    out.append((config.method.name, config, spec))
  return out


def _write(args, info, rows):
  if args.output:
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
      json.dump({"info": info, "rows": rows}, f, indent=1)


def parser():
  p = argparse.ArgumentParser(prog="sslax bench", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workloads", nargs="+", default=None, choices=list(RECIPES["cpu"]),
                 help="recipes to time (default: all, unless --config is given)")
  p.add_argument("--config", action="append", default=[], help="a config of your own, file.py[:variant]; repeatable")
  p.add_argument("--experiments", default=None, help="the folder of the recipes' configs (default ./experiments)")
  p.add_argument("--references", default=None,
                 help="experiments/bench_torch.py, the PyTorch side (default: the one in --experiments); "
                      "'none': time sslax alone")
  p.add_argument("--variant", default="cpu", choices=list(RECIPES), help="model sizes (see RECIPES)")
  p.add_argument("--compute_dtype", default="float32", choices=["float32", "bfloat16"],
                 help="sslax: train.compute_dtype; PyTorch: torch.autocast(bfloat16)")
  p.add_argument("--batch_size", type=int, default=0, help="override every workload's batch (0: the recipe's)")
  p.add_argument("--set", action="append", default=[], help="extra config overrides for sslax, key=value")
  p.add_argument("--torch_compile", action="store_true",
                 help="also time the PyTorch reference under torch.compile (a row of its own)")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--rounds", type=int, default=5)
  p.add_argument("--steps", type=int, default=2, help="steps per side per round")
  p.add_argument("--output", default=None, help="write every timing as JSON here")
  return p


def main(argv=None) -> int:
  args = parser().parse_args(argv)
  args.workloads_given = args.workloads is not None
  args.workloads = args.workloads or list(RECIPES["cpu"])
  print("| workload | batch | sslax ms/step | PyTorch ms/step | sslax / PyTorch (steps/s) | examples/s sslax / PyTorch "
        "| GFLOP/step | share of matmul peak sslax / PyTorch |")
  print("|---|---|---|---|---|---|---|---|")
  run(args)
  return 0
