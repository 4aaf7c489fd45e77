"""Where a bench workload's sslax step spends its time: XLA's ops from a profiler trace of one step.

Compiles the `sslax bench` step (same recipe, synthetic batch, one device), runs it twice to warm
up, traces one step with `jax.profiler` and reads the Perfetto trace that JAX writes beside it:
prints the slowest ops and the time per op kind (an op's name without its numeric suffix, e.g.
`transpose_copy_fusion`), and for each dot its shapes and GFLOP/s. Tracing slows the step (the
traced step's time is printed next to the untraced one), so compare shares, not milliseconds.

  python experiments/profile_step.py simclr --set train.conv_impl='xla'
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=dot,reduce python experiments/profile_step.py gpt

XLA:CPU's thunk runtime names each event after its HLO instruction; `--hlo` writes the compiled
module's text, to look those names up.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import math
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_NOT_OPS = ("ThunkExecutor", "$", "TfrtCpu", "PjRt", "PjitFunction", "CommonPjRt", "SlinkyThreadPool")


def op_times(trace_file: str) -> collections.Counter:
  """Microseconds per event name in a Perfetto trace (.json.gz), summed over its complete events."""
  with gzip.open(trace_file) as f:
    events = json.load(f)["traceEvents"]
  times = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and not e["name"].startswith(_NOT_OPS):
      times[e["name"]] += e["dur"]
  return times


def dot_flops(hlo_text: str) -> dict[str, tuple[float, str]]:
  """{instruction as the trace names it: (FLOPs, "out=[...] k=...")} for every dot of the module; a dot
  inside a fusion counts for the fusion that calls its computation."""
  bodies = dict(re.findall(r"\n(?:ENTRY )?%?([\w.\-]+) \([^\n]*\) -> [^\n]*\{\n(.*?)\n\}", hlo_text, re.DOTALL))
  caller = {comp: inst for inst, comp in re.findall(r"%([\w.\-]+) = [^\n]*?calls=%([\w.\-]+)", hlo_text)}
  out = {}
  for comp, body in bodies.items():
    shapes = dict(re.findall(r"%([\w.\-]+) = \w+\[([\d,]*)\]", body))
    for inst, shape, lhs, contracting in re.findall(
        r"%([\w.\-]+) = \w+\[([\d,]*)\][^\n]*? dot\(%([\w.\-]+)[^\n]*?lhs_contracting_dims=\{([\d,]*)\}", body):
      if lhs not in shapes:
        continue
      dims = [int(d) for d in shapes[lhs].split(",") if d]
      k = math.prod(dims[int(i)] for i in contracting.split(",") if i)
      out_shape = [int(d) for d in shape.split(",") if d]
      flops, what = 2.0 * math.prod(out_shape) * k, f"out={out_shape} k={k}"
      name = caller.get(comp, inst)
      prev = out.get(name, (0.0, ""))
      out[name] = (prev[0] + flops, what if not prev[1] else prev[1] + " +")
  return out


def main(argv=None):
  import bench
  import jax

  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("workload", choices=sorted(bench.RECIPES["cpu"]))
  p.add_argument("--variant", default="cpu", choices=sorted(bench.RECIPES))
  p.add_argument("--set", action="append", default=[], help="sslax config overrides")
  p.add_argument("--top", type=int, default=25)
  p.add_argument("--hlo", default=None, help="write the compiled module's text here")
  args = p.parse_args(argv)
  config = bench._config(args.workload, args.variant, None, "float32", args.set)
  _, _, state, batch, compiled, _ = bench.compiled_step(config)
  for _ in range(2):
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
  t = time.perf_counter()
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  untraced = time.perf_counter() - t
  with tempfile.TemporaryDirectory() as tmp:
    t = time.perf_counter()
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
      state, metrics = compiled(state, batch)
      jax.block_until_ready(metrics)
    traced = time.perf_counter() - t
    times = op_times(glob.glob(os.path.join(tmp, "**", "*.trace.json.gz"), recursive=True)[0])
  hlo = compiled.as_text()
  if args.hlo:
    with open(args.hlo, "w") as f:
      f.write(hlo)
  print(f"# {args.workload} ({args.variant}), XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}: step {untraced:.3f} s, "
        f"traced {traced:.3f} s, ops in the trace {sum(times.values()) / 1e6:.3f} s")
  kinds, counts = collections.Counter(), collections.Counter()
  for name, us in times.items():
    kind = re.sub(r"\.\d+$", "", name)
    kinds[kind] += us
    counts[kind] += 1
  print("\n| op kind | ms | count |\n|---|---|---|")
  for kind, us in kinds.most_common(args.top):
    print(f"| {kind} | {us / 1e3:,.1f} | {counts[kind]} |")
  flops = dot_flops(hlo)
  print("\n| op | ms | dot | GFLOP | GFLOP/s |\n|---|---|---|---|---|")
  for name, us in times.most_common(args.top):
    f, what = flops.get(name, (0.0, ""))
    rate = f"{f / us / 1e3:,.1f}" if f else ""
    print(f"| {name} | {us / 1e3:,.1f} | {what} | {f / 1e9:.2f} | {rate} |")


if __name__ == "__main__":
  main()
