"""Preemption notices: SIGTERM becomes "save this step and exit non-zero".

Cloud TPU / GPU preemption and SLURM send SIGTERM and allow a short grace
period before SIGKILL. During training the handler only sets a flag, read at
the next step boundary, where the loop commits the current step and raises
`Preempted`; inside `interruptible()` (evaluation, after the last checkpoint
or before the loop resaves) it raises at once, since nothing there needs
finishing.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class Preempted(RuntimeError):
  """The run was asked to stop (SIGTERM); its current step is committed. Run again to resume."""


class PreemptionNotice:
  """Context manager installing the handler for `signals` (main thread only; elsewhere a no-op)."""

  def __init__(self, signals=(signal.SIGTERM,)):
    self.signals = tuple(signals)
    self._event = threading.Event()
    self._raise_now = False
    self._previous = {}

  def _handle(self, signum, frame):
    self._event.set()
    if self._raise_now:
      raise Preempted(f"received signal {signum} during evaluation")

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in self.signals}
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous = {}
    return False

  @property
  def requested(self) -> bool:
    return self._event.is_set()

  @contextlib.contextmanager
  def interruptible(self):
    """Within this block a notice raises `Preempted` immediately (also if one came before)."""
    if self.requested:
      raise Preempted("a preemption notice arrived earlier")
    self._raise_now = True
    try:
      yield
    finally:
      self._raise_now = False
