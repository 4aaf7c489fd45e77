"""Picks JAX's CPU backend quietly on a machine with no accelerator.

With `jax[tpu]` installed (the `test` and `plan` extras bring it, for `sslax plan`), JAX tries
libtpu's backend first wherever it runs, and on a machine without a TPU libtpu writes errors to
stderr before JAX falls back to the CPU ("could not determine TPU accelerator type",
"INVALID_ARGUMENT: unexpected worker hostname"). A user who did not ask for a TPU should see
none of that, so the `sslax` command sets `jax_platforms='cpu'` when the machine shows no TPU,
NVIDIA or AMD GPU and the user has not chosen (`JAX_PLATFORMS` unset, no `TPU_*` variable
that points libtpu at a TPU). Anywhere else JAX chooses as it always does; `JAX_PLATFORMS`
overrides either way. JAX has no public probe for accelerators; the checks here are the ones
its own `hardware_utils` makes (PCI vendor 0x1ae0 for TPUs, the NVIDIA and KFD device nodes).
"""
from __future__ import annotations

import glob
import os

_GOOGLE_PCI_VENDOR = "0x1ae0"
_GPU_NODES = ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/kfd")
_TPU_ENV = ("TPU_ACCELERATOR_TYPE", "TPU_WORKER_HOSTNAMES", "TPU_SKIP_MDS_QUERY", "TPU_PROCESS_ADDRESSES")


def _has_tpu() -> bool:
  for path in glob.glob("/sys/bus/pci/devices/*/vendor"):
    try:
      with open(path) as f:
        if f.read().strip() == _GOOGLE_PCI_VENDOR:
          return True
    except OSError:
      continue
  return any(os.environ.get(name) for name in _TPU_ENV)


def has_accelerator() -> bool:
  """True if this machine shows a TPU (PCI) or an NVIDIA / AMD GPU (device nodes)."""
  return _has_tpu() or any(os.path.exists(node) for node in _GPU_NODES)


def use_cpu_unless_accelerated() -> str | None:
  """Sets JAX's platforms to 'cpu' where no accelerator is visible and the user chose none.

  Call before JAX starts its backends. Returns the platform set ('cpu'), or None when it left
  the choice to JAX (an accelerator is there, `JAX_PLATFORMS` or `jax_platforms` is set, or the
  backends already started).
  """
  if "JAX_PLATFORMS" in os.environ or has_accelerator():  # JAX_PLATFORMS='' too: JAX's own choice
    return None
  import jax
  from jax._src import xla_bridge  # backends_are_initialized has no public spelling

  if jax.config.jax_platforms or xla_bridge.backends_are_initialized():
    return None
  jax.config.update("jax_platforms", "cpu")
  return "cpu"
