"""`sslax plan`: compile a recipe's real train step for a TPU topology from any machine, and size it.

JAX can compile for TPU devices it does not have: with `jax[tpu]` installed
(libtpu comes from PyPI), `jax.experimental.topologies.get_topology_desc`
gives abstract devices of a slice, and `jit(...).lower(abstract args).compile()`
runs the TPU compiler for them. The compiled program says per chip what it
needs (`memory_analysis`), how many FLOPs it does (`cost_analysis`) and which
collectives it runs (its HLO); the compiler refuses (RESOURCE_EXHAUSTED) a
step that does not fit in HBM. Nothing is allocated and no data is read: the
state comes from `jax.eval_shape` and the batch from the config's shapes.

What sslax adds (JAX has no such tool): the recipe's own step, mesh and
sharding rules; the collective bytes from the HLO; a roofline estimate of the
step time from published chip figures (printed beside the estimate); and the
largest per-chip batch that fits.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any

import jax

GiB = 1024 ** 3


@dataclasses.dataclass(frozen=True)
class Chip:
  """Published per-chip figures (cloud.google.com/tpu/docs/<generation>): HBM, bf16 peak (a float32
  matmul runs as bf16 passes at JAX's default precision on TPU), HBM and ICI bandwidth."""
  name: str
  hbm_bytes: float
  peak_flops: float      # bf16 FLOP/s
  hbm_bandwidth: float   # bytes/s
  ici_bandwidth: float   # bytes/s, all of a chip's links together, one direction
  cores_per_chip: int    # what the accelerator type name counts (v4-32 = 16 chips)


CHIPS = {
    "v4": Chip("TPU v4", 32 * GiB, 275e12, 1228e9, 2400e9 / 8, 2),
    "v5e": Chip("TPU v5e", 16 * GiB, 197e12, 819e9, 1600e9 / 8, 1),
    "v5p": Chip("TPU v5p", 95 * GiB, 459e12, 2765e9, 4800e9 / 8, 2),
    "v6e": Chip("TPU v6e", 32 * GiB, 918e12, 1640e9, 3584e9 / 8, 1),
}
# chips per host of each generation's VMs (the host bounds get_topology_desc needs)
HOST_BOUNDS = {"v4": (2, 2, 1), "v5e": (2, 2, 1), "v5p": (2, 2, 1), "v6e": (2, 2, 1)}
# image shapes of TFDS datasets the `full` recipes name (TFDS images of varying size need data.image_size)
def parse_topology(text: str) -> tuple[str, str, Chip]:
  """'v5p:4x4x4' or an accelerator type ('v5p-128', 'v4-32', 'v5litepod-16', 'v5e-16') ->
  (generation, topology name for get_topology_desc, chip figures)."""
  m = re.fullmatch(r"(v4|v5e|v5p|v6e):(\d+(?:x\d+){1,2})", text)
  if m:
    return m.group(1), text, CHIPS[m.group(1)]
  m = re.fullmatch(r"(v4|v5e|v5litepod|v5p|v6e)-(\d+)", text)
  if not m:
    raise ValueError(f"--topology: expected 'v5p:4x4x4' or an accelerator type such as v5p-128, v4-32, v5e-16, "
                     f"got {text!r}")
  gen = "v5e" if m.group(1) == "v5litepod" else m.group(1)
  chip = CHIPS[gen]
  chips = int(m.group(2)) // chip.cores_per_chip
  if gen in ("v5e", "v6e"):  # 2D tori
    shapes = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
  else:  # 3D tori: the smallest cube-like shape with a 2x2 face per host
    shapes = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8", 256: "4x8x8",
              512: "8x8x8"}
  if chips not in shapes:
    raise ValueError(f"--topology: expected a slice size of {sorted(shapes)} chips for {gen}, got {text!r} "
                     f"({chips} chips)")
  return gen, f"{gen}:{shapes[chips]}", chip


def topology_devices(text: str):
  """The abstract TPU devices of a topology (needs `jax[tpu]`: libtpu provides the compiler)."""
  from jax.experimental import topologies

  gen, name, chip = parse_topology(text)
  dims = [int(d) for d in name.split(":")[1].split("x")]
  # libtpu reads the slice from these on a TPU VM; elsewhere, name it (and no other workers) so
  # that it does not warn about a machine it is not running on
  chips = math.prod(dims)
  kind = {"v5e": "v5litepod"}.get(gen, gen)
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", f"{kind}-{chips * chip.cores_per_chip}")
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  # libtpu locks /tmp/libtpu_lockfile so that one process owns the chips; planning owns none
  # (it only compiles), so several plans (test workers, a sweep) may load it side by side
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  bounds = tuple(min(b, d) for b, d in zip(HOST_BOUNDS[gen], dims + [1]))
  try:
    # v4 chips run as one device of two TensorCores (megacore), as JAX uses them on a v4 VM
    desc = topologies.get_topology_desc(platform="tpu", topology_name=name,
                                        chip_config_name="megacore" if gen == "v4" else "default",
                                        chips_per_host_bounds=bounds, num_slices=1)
  except Exception as e:  # no libtpu, or a topology libtpu does not know
    raise RuntimeError(f"--topology {text}: could not describe {name} ({type(e).__name__}: {e}); "
                       "`sslax plan` needs jax[tpu] (pip install -e '.[plan]')") from e
  devices = list(desc.devices)
  if len(devices) != chips:  # the per-chip figures below would be wrong otherwise
    raise RuntimeError(f"--topology {text}: expected one device per chip ({chips}), libtpu gave {len(devices)}")
  return devices, chip


def batch_shapes(config, batch_size: int, method=None) -> dict[str, jax.ShapeDtypeStruct]:
  """The shapes and dtypes of one global batch as the data pipeline hands it to the step: the
  method's `inputs.batch_spec` (the method of `config` unless given)."""
  if method is None:
    from sslax.methods import make_method

    method = make_method(config)
  return method.inputs.batch_spec(batch_size)


# `%name = <shape or (tuple of shapes)> <op>(`; tuple shapes may hold `/*index=5*/` comments
_COLLECTIVE = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*?)\s(all-reduce|all-gather|reduce-scatter|"
                         r"all-to-all|collective-permute)(-start)?\(")
_SHAPE = re.compile(r"\b(pred|s8|u8|s16|u16|s32|u32|s64|u64|bf16|f16|f32|f64|c64)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "f32": 4,
          "s64": 8, "u64": 8, "f64": 8, "c64": 8}


def collectives(hlo_text: str) -> dict[str, dict[str, float]]:
  """{kind: {"count", "bytes"}} of the collectives in a compiled (per-device) HLO module; bytes are
  the sizes of their results (for an async `-start`, its destinations: the second half of its
  tuple, or a collective-permute's second element, before its two u32 context words)."""
  out: dict[str, dict[str, float]] = {}
  for line in hlo_text.splitlines():
    m = _COLLECTIVE.search(line)
    if not m:
      continue
    shapes = _SHAPE.findall(m.group(1))
    if m.group(2) == "collective-permute" and m.group(3) and len(shapes) > 1:
      shapes = shapes[1:2]  # (operand, destination, u32 context, u32 context)
    elif m.group(3) and len(shapes) > 1:
      shapes = shapes[len(shapes) // 2:]  # (operands, destinations)
    size = sum(_BYTES[t] * math.prod(int(x) for x in dims.split(",") if x) for t, dims in shapes)
    entry = out.setdefault(m.group(2), {"count": 0, "bytes": 0.0})
    entry["count"] += 1
    entry["bytes"] += size
  return out


def link_bytes(kind: str, result_bytes: float, n: int) -> float:
  """Bytes one chip sends for a collective over n chips, ring algorithm: all-reduce 2(n-1)/n of
  the array, all-gather (n-1)/n of its result, reduce-scatter (n-1) times its result (the input
  is n results), all-to-all (n-1)/n, a permute all of it."""
  if n <= 1:
    return 0.0
  return {"all-reduce": 2 * (n - 1) / n * result_bytes, "all-gather": (n - 1) / n * result_bytes,
          "reduce-scatter": (n - 1) * result_bytes, "all-to-all": (n - 1) / n * result_bytes,
          "collective-permute": result_bytes}[kind]


class PlanError(RuntimeError):
  """The step could not be compiled for another reason than memory (the message says which)."""


def compile_step(config, devices, batch_size: int):
  """Compiles the config's train step for `devices` at global `batch_size`.
  Raises MemoryError with the compiler's figures when it does not fit."""
  from sslax.methods import make_method
  from sslax.train.mesh import make_mesh
  from sslax.train.state import abstract_train_state, build_optimizer
  from sslax.train.step import activation_constraints, make_train_step
  from sslax.data.pipeline import data_sharding

  if config.train.get("conv_impl", "auto") == "auto" and devices[0].platform != "cpu":
    # 'auto' picks by the backend this process runs on (CPU here): the target's is XLA's own
    config = config.copy_and_resolve_references()
    config.unlock()
    config.train.conv_impl = "xla"
  mesh = make_mesh(config.mesh, devices)
  method = make_method(config)
  steps = int(config.train.num_steps) or 1000  # the schedule's length does not change the program
  optimizer = build_optimizer(method, config, steps)
  abstract_state, shardings = abstract_train_state(method, optimizer, config.seed, mesh, config.get("sharding"))
  batch = batch_shapes(config, batch_size, method)
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=data_sharding(mesh)) for k, v in batch.items()}
  step = make_train_step(method, optimizer, mesh, shardings,
                         constrain_activations=activation_constraints(config, shardings))
  lowered = step.lower(abstract_state, batch)
  try:
    return lowered.compile()
  except Exception as e:  # XlaRuntimeError; only its message tells memory from other failures
    message = str(e)
    if "RESOURCE_EXHAUSTED" in message or "Ran out of memory" in message:
      raise MemoryError(_oom_summary(message)) from e
    raise PlanError(f"compiling the step for {len(devices)} TPU devices failed: {message[:2000]}") from e


def _oom_summary(message: str) -> str:
  """The compiler's own figures from a RESOURCE_EXHAUSTED message, without the stack trace."""
  lines = [ln.strip() for ln in message.splitlines() if re.search(r"(?i)(used|exceed|hbm|memory|limit)", ln)]
  return " ".join(lines[:3])[:600] or message[:600]


def analyze(compiled, chip: Chip, num_chips: int, batch_size: int, tokens_per_example: int) -> dict[str, Any]:
  """Memory per chip, FLOPs, collectives and a roofline step time of a compiled step."""
  mem = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  args, outs = float(mem.argument_size_in_bytes), float(mem.output_size_in_bytes)
  alias, temp = float(mem.alias_size_in_bytes), float(mem.temp_size_in_bytes)
  code = float(getattr(mem, "generated_code_size_in_bytes", 0))
  total = args + outs - alias + temp + code
  flops = float(cost.get("flops", 0.0))
  hbm_bytes = float(cost.get("bytes accessed", 0.0))
  colls = collectives(compiled.as_text())
  sent = sum(link_bytes(k, v["bytes"], num_chips) for k, v in colls.items())
  t_compute, t_memory, t_comm = flops / chip.peak_flops, hbm_bytes / chip.hbm_bandwidth, sent / chip.ici_bandwidth
  # no overlap of communication with compute: an upper bound of the roofline
  t_step = max(t_compute, t_memory) + t_comm
  per_chip = batch_size / num_chips
  return {
      "chips": num_chips, "global_batch": batch_size, "batch_per_chip": per_chip,
      "memory": {"arguments": args, "outputs": outs, "aliased": alias, "temporary": temp, "code": code,
                 "total": total, "hbm": chip.hbm_bytes, "fraction_of_hbm": total / chip.hbm_bytes},
      "flops_per_chip": flops, "hbm_bytes_per_chip": hbm_bytes, "collectives": colls,
      "ici_bytes_sent_per_chip": sent,
      "time": {"compute": t_compute, "memory": t_memory, "communication": t_comm, "step": t_step},
      "mfu": t_compute / t_step if t_step else 0.0,
      "examples_per_sec_per_chip": per_chip / t_step if t_step else 0.0,
      "tokens_per_sec_per_chip": per_chip * tokens_per_example / t_step if t_step else 0.0,
      "chip_figures": dataclasses.asdict(chip),
  }


def tokens_per_example(config) -> int:
  """Tokens (text), frames at 20 ms (speech) or 1 (images) per example, for throughput figures."""
  from sslax.methods import make_method

  return make_method(config).inputs.tokens_per_example()


def plan(config, topology: str, *, batch_size: int | None = None, search_batch: bool = False) -> dict[str, Any]:
  """Compiles `config`'s step for `topology` and reports what each chip needs (see `analyze`).
  With `search_batch`, also the largest per-chip batch that fits (doubling, then halving the gap)."""
  devices, chip = topology_devices(topology)
  n = len(devices)
  batch = int(batch_size or config.train.batch_size)
  tpe = tokens_per_example(config)
  report: dict[str, Any] = {"topology": topology, "chip": chip.name, "devices": n,
                            "sharding": [list(r) for r in (config.get("sharding") or {}).get("rules", ())]}
  if batch % n:
    raise ValueError(f"train.batch_size: expected a multiple of the {n} devices of {topology}, got {batch}")
  try:
    compiled = compile_step(config, devices, batch)
    report.update(analyze(compiled, chip, n, batch, tpe), fits=True)
  except MemoryError as e:
    report.update(fits=False, global_batch=batch, batch_per_chip=batch / n, compiler=str(e))
  if search_batch:
    report["max_batch_per_chip"] = largest_batch_per_chip(config, devices, start=max(1, batch // n))
  return report


def largest_batch_per_chip(config, devices, *, start: int, limit: int = 1 << 16) -> int:
  """The largest per-chip batch whose step fits (0 if even 1 does not)."""
  n = len(devices)

  def fits(b):
    try:
      compile_step(config, devices, b * n)
      return True
    except MemoryError:
      return False

  lo, hi = 0, None
  b = start
  while b <= limit:  # doubling until it does not fit
    if fits(b):
      lo, b = b, b * 2
    else:
      hi = b
      break
  if hi is None:
    return lo
  if lo == 0:  # even `start` does not fit: halve down
    b = hi // 2
    while b >= 1 and not fits(b):
      hi, b = b, b // 2
    if b < 1:
      return 0
    lo = b
  while hi - lo > max(1, lo // 8):  # within 12.5%
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if fits(mid) else (lo, mid)
  return lo


def format_report(r: dict[str, Any]) -> str:
  """A human-readable summary of one `plan` report."""
  head = f"{r['topology']} ({r['devices']} x {r['chip']}), global batch {r['global_batch']} " \
         f"({r['batch_per_chip']:g} per chip), sharding {r['sharding'] or 'replicated'}"
  if not r["fits"]:
    lines = [head, f"  does NOT fit: {r['compiler']}"]
  else:
    m, t = r["memory"], r["time"]
    c = r["chip_figures"]
    lines = [head,
             f"  memory per chip: arguments {m['arguments'] / GiB:.2f} GiB, outputs {m['outputs'] / GiB:.2f} GiB "
             f"(aliased {m['aliased'] / GiB:.2f}), temporary {m['temporary'] / GiB:.2f} GiB, total "
             f"{m['total'] / GiB:.2f} of {m['hbm'] / GiB:.0f} GiB HBM ({100 * m['fraction_of_hbm']:.1f}%)",
             f"  FLOPs per chip per step: {r['flops_per_chip']:.3e}; HBM traffic {r['hbm_bytes_per_chip'] / GiB:.2f} GiB",
             "  collectives: " + (", ".join(f"{k} x{v['count']} ({v['bytes'] / 2**20:.1f} MiB)"
                                            for k, v in sorted(r["collectives"].items())) or "none")
             + f"; {r['ici_bytes_sent_per_chip'] / 2**20:.1f} MiB sent per chip",
             f"  roofline: compute {1e3 * t['compute']:.2f} ms, HBM {1e3 * t['memory']:.2f} ms, ICI "
             f"{1e3 * t['communication']:.2f} ms -> step {1e3 * t['step']:.2f} ms, MFU {100 * r['mfu']:.0f}%, "
             f"{r['examples_per_sec_per_chip']:.0f} examples/s/chip"
             + (f", {r['tokens_per_sec_per_chip']:.0f} tokens/s/chip" if r["tokens_per_sec_per_chip"] !=
                r["examples_per_sec_per_chip"] else ""),
             f"  chip figures used: {c['peak_flops'] / 1e12:.0f} TFLOP/s bf16, HBM {c['hbm_bandwidth'] / 1e9:.0f} GB/s, "
             f"ICI {c['ici_bandwidth'] / 1e9:.0f} GB/s"]
  if "max_batch_per_chip" in r:
    lines.append(f"  largest batch per chip that fits: {r['max_batch_per_chip']}")
  return "\n".join(lines)


__all__ = ["CHIPS", "Chip", "PlanError", "analyze", "batch_shapes", "collectives", "compile_step",
           "format_report", "largest_batch_per_chip", "link_bytes", "parse_topology", "plan", "topology_devices"]
