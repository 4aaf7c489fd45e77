"""XLA:CPU's YNNPACK dot, convolution and reduction fusions, as an opt-in (`SSLAX_XLA_CPU_FLAGS=1`).

XLA:CPU can hand its dot/convolution and reduction fusions to YNNPACK
(`--xla_cpu_experimental_ynn_fusion_type=dot,reduce`); jax 0.10 leaves that
off. On 2 cores in float32 a SimCLR ResNet-18 step ran 1.23x faster with it
(0.72x -> 0.89x PyTorch in the same run; `train.conv_impl='auto'` then keeps
XLA's convolutions, whose weight gradients it runs ~10x faster), and BERT and
GPT steps within the run-to-run spread (RESULTS.md,
`experiments/xla_cpu_flags.py`); results equal to float32 rounding. "reduce"
matters: with "dot" alone XLA rewrites large reductions (batch-norm
statistics) into reduce-windows that run ~8x slower. It is experimental in
XLA ("eltwise" fails to compile a SimCLR step) and changes the flags of every
XLA:CPU program in the process, so sslax does not turn it on by itself.

XLA reads `XLA_FLAGS` once, when its first backend starts, so with
`SSLAX_XLA_CPU_FLAGS=1` in the environment `import sslax` adds the flag to
`XLA_FLAGS` (reaching subprocesses too): only for the jaxlib versions it was
measured on (an unknown flag is a fatal error in XLA), and only when
`XLA_FLAGS` does not already set it. GPUs and TPUs ignore the flag.
`ynn_dots()` tells whether the environment has it.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
# "reduce" too: with "dot" alone XLA rewrites large reductions (batch-norm statistics, layer norms)
# into reduce-windows that run ~8x slower (2 channel sums of [128, 32, 32, 64]: 5.9 -> 49.7 ms).
YNN_VALUE = "dot,reduce"
# jaxlib versions on which the flag exists and was measured: [first, last)
TESTED_JAXLIB = ((0, 10, 2), (0, 11, 0))


def _version(text: str) -> tuple[int, ...]:
  parts = []
  for piece in text.split(".")[:3]:
    digits = "".join(ch for ch in piece if ch.isdigit())
    parts.append(int(digits) if digits else 0)
  return tuple(parts)


def jaxlib_version() -> tuple[int, ...] | None:
  from importlib.metadata import PackageNotFoundError, version

  try:
    return _version(version("jaxlib"))
  except PackageNotFoundError:
    return None


def add_cpu_flags(environ: MutableMapping[str, str] | None = None, jaxlib: tuple[int, ...] | None = None) -> bool:
  """With SSLAX_XLA_CPU_FLAGS=1 in `environ` (os.environ by default), adds
  `--xla_cpu_experimental_ynn_fusion_type=dot,reduce` to its `XLA_FLAGS`; returns whether it did. Leaves
  it alone when XLA_FLAGS already names the flag (the user's value wins) or when jaxlib is outside
  `TESTED_JAXLIB`."""
  environ = os.environ if environ is None else environ
  flags = environ.get("XLA_FLAGS", "")
  if environ.get("SSLAX_XLA_CPU_FLAGS", "0") != "1" or YNN_FLAG in flags:
    return False
  jaxlib = jaxlib_version() if jaxlib is None else jaxlib
  if jaxlib is None or not TESTED_JAXLIB[0] <= jaxlib < TESTED_JAXLIB[1]:
    return False
  environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}={YNN_VALUE}".strip()
  return True


def ynn_dots(environ: MutableMapping[str, str] | None = None) -> bool:
  """Whether XLA_FLAGS sends dot and convolution fusions to YNNPACK (the flag's last setting wins,
  as in XLA's parser)."""
  flags = (os.environ if environ is None else environ).get("XLA_FLAGS", "")
  value = None
  for token in flags.split():
    if token.startswith(YNN_FLAG + "="):
      value = token.split("=", 1)[1]
  if value is None:
    return False
  return "dot" in [v.lstrip("+") for v in value.split(",") if not v.startswith("-")]
