"""Keeps a training loop at most one step ahead of the device.

JAX dispatches asynchronously: a loop that does not read its results queues steps as fast as
Python runs (up to the PjRt client's per-device limit of computations in flight). On XLA:CPU
with several devices in one process (`--xla_force_host_platform_device_count`, as the tests
use), a deep queue of programs with collectives deadlocks in jaxlib 0.10.2: some participants of
an all-reduce never reach its rendezvous, and after 40 s
(`--xla_cpu_collective_call_terminate_timeout_seconds`) XLA aborts the process ("Termination
timeout ... Exiting to ensure a consistent program state", `Fatal Python error: Aborted`).
`experiments/async_dispatch_deadlock.py` reproduces it in a few seconds of steps on 2 cores;
waiting for the step before last, as here, it did not come back. That keeps the device busy
(one step queued while the host prepares the next) and bounds the host memory of queued batches.
No upstream issue matches the deadlock yet (searched jax-ml/jax and openxla/xla); that script is
the reproduction to file.
"""
from __future__ import annotations

from typing import Any

import jax


class OneStepAhead:
  """`ahead(outputs)` after each dispatch: waits until the step before that one has finished.

  Pass outputs that the next step does not donate (its metrics or loss, not its state).
  """

  def __init__(self):
    self._pending: Any = None

  def __call__(self, outputs: Any) -> None:
    if self._pending is not None:
      jax.block_until_ready(self._pending)
    self._pending = outputs
