"""Workdir and checkpoint paths through `etils.epath`: local folders and `gs://` (or `s3://`) alike.

Orbax and TFDS already read and write object stores through epath; sslax's own
files beside them (checkpoint manifests, the run fingerprint, data positions,
config.json, report.json, metrics.jsonl) go through the same API, so one code path
serves a laptop's folder and a TPU pod's bucket, and the local runs in CI exercise
it. What differs is said where it does: object stores have no file locks, no
free-space query, and no append (metrics.jsonl is rewritten whole there).
"""
from __future__ import annotations

import os
from typing import Union

from etils import epath

PathLike = Union[str, os.PathLike, epath.Path]
REMOTE_PREFIXES = ("gs://", "s3://", "az://", "hf://")


def is_remote(path: PathLike) -> bool:
  """True for object-store URLs (`gs://bucket/run`), False for local paths.

  >>> is_remote("gs://bucket/run"), is_remote("runs/simclr")
  (True, False)
  """
  return os.fspath(path).startswith(REMOTE_PREFIXES)


def resolve(path: PathLike) -> str:
  """An absolute local path, or the URL as given."""
  text = os.fspath(path)
  return text if is_remote(text) else os.path.abspath(text)


def join(path: PathLike, *parts: str) -> str:
  """`path` / parts, as a string; URLs stay URLs.

  >>> join("gs://bucket/run", "checkpoints", "100")
  'gs://bucket/run/checkpoints/100'
  """
  return os.fspath(epath.Path(resolve(path)).joinpath(*parts))


def write_text(path: PathLike, text: str) -> None:
  """Writes `text` so that a reader sees the old content or the new, never a torn file: a
  temporary file renamed over the target locally; one object write on object stores (whose
  writes are already all-or-nothing)."""
  target = epath.Path(resolve(path))
  if is_remote(target):
    target.write_text(text)
    return
  tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
  with tmp.open("w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  tmp.replace(target)


def read_text(path: PathLike) -> str:
  return epath.Path(resolve(path)).read_text()


def exists(path: PathLike) -> bool:
  return epath.Path(resolve(path)).exists()


def makedirs(path: PathLike) -> None:
  epath.Path(resolve(path)).mkdir(parents=True, exist_ok=True)
