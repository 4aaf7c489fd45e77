"""A run's workdir: checked before anything is prepared or compiled, and owned by one run at a time.

Orbax has no notion of a second job writing the same checkpoint folder (two
`sslax train` on one workdir wrote the same step folders, or one died in
Orbax's metadata reads); this module is that missing lock, on local and network
file systems. A `gs://` workdir (object stores have no locks) is taken as given.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time

from sslax.paths import is_remote, resolve

log = logging.getLogger("sslax")


class WorkdirBusyError(ValueError):
  """Another live run holds the workdir; the message names its pid and host."""


def check_workdir(workdir, flag: str = "--workdir") -> str:
  """The absolute workdir, created if missing; ValueError naming `flag`, the path and what was
  expected when it is empty, a file, or cannot be created or written (nothing else is touched)."""
  if not isinstance(workdir, (str, os.PathLike)) or not os.fspath(workdir).strip():
    raise ValueError(f"{flag}: expected a directory path, got {workdir!r}")
  if is_remote(workdir):  # gs://bucket/run: folders are name prefixes there, made by the first write
    return os.fspath(workdir).rstrip("/")
  path = os.path.abspath(os.fspath(workdir))
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"{flag}: expected a directory, got the file {path!r}")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ValueError(f"{flag}: cannot create the directory {path!r} ({e.strerror or e})") from None
  return path


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's live process
    return True
  return True


class WorkdirLock:
  """An exclusive, non-blocking `fcntl.flock` on `<workdir>/sslax.lock` (one file per process of a
  multi-process run: `sslax.lock.<process index>`), holding the owner's pid, host and start time.

  The kernel drops the lock when its process dies (kill -9 included), so a stale lock file is
  simply taken over; its old content is logged. On a network file system the lock is as good as the
  server's `flock` (NFSv4 and Lustre support it).

  >>> import tempfile
  >>> with tempfile.TemporaryDirectory() as d, WorkdirLock(d) as lock:
  ...   lock.holder()["pid"] == os.getpid()
  True
  """

  def __init__(self, workdir: str, process_index: int = 0, flag: str = "--workdir"):
    self.workdir = resolve(workdir)
    name = "sslax.lock" if process_index == 0 else f"sslax.lock.{process_index}"
    self.path = os.path.join(self.workdir, name)
    self.flag = flag
    self._fd: int | None = None

  def holder(self) -> dict:
    """What the lock file says about its holder ({} when it says nothing readable)."""
    try:
      with open(self.path) as f:
        return json.load(f)
    except (OSError, ValueError):
      return {}

  def acquire(self) -> "WorkdirLock":
    if is_remote(self.workdir):  # object stores have no locks: one run per bucket prefix is the user's to keep
      log.info("workdir: %s is on an object store, which has no file locks; no second run is refused there",
               self.workdir)
      return self
    try:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise ValueError(f"{self.flag}: cannot write to {self.workdir!r} ({e.strerror or e}); expected a "
                       "writable directory") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      h = self.holder()
      since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["started"])) if "started" in h else "?"
      raise WorkdirBusyError(
          f"{self.flag}: {self.workdir} is in use by another sslax run (pid {h.get('pid', '?')} on host "
          f"{h.get('host', '?')}, since {since}: {h.get('command', '?')}); wait for it to finish or stop it, or "
          "use another workdir") from None
    previous = self.holder()
    if previous.get("pid") not in (None, os.getpid()):
      same_host = previous.get("host") == socket.gethostname()
      log.info("workdir: taking over the lock of pid %s on %s (%s)", previous.get("pid"), previous.get("host"),
               "no longer running" if same_host and not _alive(int(previous["pid"])) else "lock released")
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                             "command": " ".join(_command())}).encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()


def _command() -> list[str]:
  import sys

  return [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]][:12]
