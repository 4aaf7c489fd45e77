"""Metrics sinks: metrics.jsonl, TensorBoard events, and a progress bar."""
from __future__ import annotations

import json
import sys
import time

import jax

from sslax.paths import exists, is_remote, join, makedirs, read_text, write_text


def _summary_writer_class():
  """tensorboardX's SummaryWriter, imported without importing PyTorch when the process has not.

  tensorboardX imports torch, when installed, only to accept torch tensors as values; that import
  took ~6 s of each `sslax train` process's start on 2 cores, and the values here are floats.
  `sys.modules["torch"] = None` makes its `import torch` fail (it then takes numpy arrays only);
  the entry is removed after, so the process can still import torch itself.
  """
  if "torch" in sys.modules:
    from tensorboardX import SummaryWriter

    return SummaryWriter
  sys.modules["torch"] = None
  try:
    from tensorboardX import SummaryWriter
  finally:
    del sys.modules["torch"]
  return SummaryWriter


class MetricsWriter:
  """Appends one JSON line per logged step to `<workdir>/metrics.jsonl` and mirrors scalars
  to TensorBoard (tensorboardX) under `<workdir>/tensorboard`. Only process 0 writes.

  On an object store (`gs://`; no appends there) the file is rewritten whole at each write, from
  what it held when the run started plus this run's lines: one small object per log step."""

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    self._file = self._tb = None
    self._remote = is_remote(workdir)
    self._path = join(workdir, "metrics.jsonl")
    self._lines: list[str] = []
    if self.active:
      makedirs(workdir)
      if self._remote:
        self._lines = read_text(self._path).splitlines(keepends=True) if exists(self._path) else []
      else:
        self._file = open(self._path, "a", buffering=1)
      self._tb = _summary_writer_class()(join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.active:
      return
    record = {"step": int(step), "time": time.time(), **{k: float(v) for k, v in metrics.items()}}
    if self._remote:
      self._lines.append(json.dumps(record) + "\n")
      write_text(self._path, "".join(self._lines))
    else:
      self._file.write(json.dumps(record) + "\n")
    for k, v in metrics.items():
      self._tb.add_scalar(k, float(v), int(step))

  def close(self) -> None:
    if self.active:
      if self._file is not None:
        self._file.close()
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """The records of `<workdir>/metrics.jsonl`, later records of a step replacing earlier ones
  (a resumed run re-logs nothing twice, but a crash between log and checkpoint may)."""
  path = join(workdir, "metrics.jsonl")
  if not exists(path):
    return []
  by_key = {}
  for line in read_text(path).splitlines():
    try:
      rec = json.loads(line)
    except ValueError:  # a line torn by a kill mid-write
      continue
    by_key[(rec["step"], tuple(sorted(k for k in rec if k not in ("step", "time"))))] = rec
  return sorted(by_key.values(), key=lambda r: r["step"])
