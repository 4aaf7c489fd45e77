"""What the local-file TFDS builders share (image, audio, text and CoNLL folders), and stock TFDS
datasets by name: a leaf module that the data-type modules import, so none of them imports
another (`sources.py`, the registry, imports them all).

TFDS has the builder base classes but not what local files need on top of
them: a cache key from every file's path, size and modification time and the
settings (so an added, removed or edited file inside a folder is prepared
again, and the run says so), bad examples skipped or raised by
`data.on_bad_example`, an empty split refused with its path, the skipped
examples kept beside the prepared data, prepared files checked for
truncation before they are read (and prepared again), one process preparing
at a time with the leftovers of an interrupted one removed, and a read-only
`data.data_dir` named before anything is prepared. `LocalFiles` and
`prepared_sources` are that, once.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

log = logging.getLogger("sslax")

DEFAULT_DATA_DIR = os.path.join(os.path.expanduser("~"), ".cache", "sslax", "tfds")


class BadExampleError(ValueError):
  """A data file that cannot be used; the message names it."""


def content_key(path) -> str:
  """What a cache of `path` must be rebuilt on: a file's resolved path, size and modification time,
  or for a folder every file under it (relative path, size, mtime; symlinks followed). A folder's
  own mtime changes only when an entry of its top level is added or removed, so it would not see
  an image added to `<class>/` or a file overwritten in place. Only `stat` is read, no file's bytes
  (its cost per file is in experiments/RESULTS.md, issue 36)."""
  path = Path(path).resolve()
  if not path.is_dir():
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"
  h = hashlib.sha1()
  for dirpath, dirnames, names in os.walk(path, followlinks=True):
    dirnames.sort()
    for name in sorted(names):
      full = os.path.join(dirpath, name)
      try:
        st = os.stat(full)
      except OSError:  # a dangling link: the reader skips it too
        continue
      h.update(f"{os.path.relpath(full, path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
  return f"{path}/:{h.hexdigest()}"


def writable_dir(path: str, key: str = "data.data_dir") -> str:
  """`path`, created if missing and checked by writing a file there; otherwise ValueError naming
  `key`, the path and why (data prepared there before is only read, so a read-only data_dir is
  fine until something needs preparing)."""
  try:
    os.makedirs(path, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=path, prefix=".sslax-write-check-")
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise ValueError(f"{key}: cannot write the prepared data to {path!r} ({e.strerror or e}); expected a writable "
                     "folder (set data.data_dir to one)") from None
  return path


class LocalFiles:
  """Mixin for a TFDS builder of local files, one path per split (put it before the TFDS base).

  A subclass calls `_local_files(split_paths, on_bad_example)` first in its `__init__`, names its
  cache with `cache_name(settings)`, and yields `(key, example)` or `(key, BadExampleError)` from
  `_read_split(split, path)`; `_split_generators` then skips or raises each bad example (naming
  it) and refuses a split with no example.
  """

  # "files", "rows", "sentences": what a bad example is, in the skip hint
  bad_examples = "files"
  # the message of an empty split, formatted with the split's path
  empty_split = "no usable example in {path} (expected at least one)"

  def _local_files(self, split_paths: Mapping[str, str], on_bad_example: str) -> None:
    self._split_paths = {k: Path(v) for k, v in split_paths.items()}
    self._on_bad = on_bad_example
    self.skipped: list[str] = []

  def cache_name(self, settings: str, also: tuple = ()) -> str:
    """`<first path's stem>_<hash>` of the content key (`content_key`) of every split's path and of
    the files `also` names (a labels CSV, a captions file), and `settings`."""
    named = [(k, Path(p)) for k, p in sorted(self._split_paths.items())] + [(f"also{i}", Path(p))
                                                                          for i, p in enumerate(also)]
    self.identity = "|".join(f"{k}={p.resolve()}" for k, p in named) + settings  # the same data, any content
    key = "|".join(f"{k}={content_key(p)}" for k, p in named)
    first = next(iter(self._split_paths.values()))
    return f"{first.name.split('.')[0]}_{hashlib.sha1((key + settings).encode()).hexdigest()[:10]}"

  def _read_split(self, split: str, path: Path) -> Iterator[tuple[str, Any]]:
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split, path) for split, path in self._split_paths.items()}

  def _generate_examples(self, split: str, path: Path):
    count = 0
    for key, example in self._read_split(split, path):
      if isinstance(example, BadExampleError):
        if self._on_bad == "error":
          raise BadExampleError(f"{example} (set data.on_bad_example='skip' to leave such {self.bad_examples} "
                                "out)") from None
        self.skipped.append(str(example))
        continue
      count += 1
      yield key, example
    if not count:  # TFDS would stop on an opaque AssertionError
      raise ValueError(f"data.paths.{split}: split {split!r} is empty: " + self.empty_split.format(path=path))


def make_local_builder(builder_cls, split_paths: Mapping[str, str], data_dir: str | None, *, expected: str,
                       files_only: bool = True, **kwargs):
  """`builder_cls` over `split_paths` (each checked to be an existing file, or with `files_only`
  False a file or folder; the error names `data.paths.<split>` and `expected`), writing
  array_record under `data_dir` (default ~/.cache/sslax/tfds)."""
  for split, p in split_paths.items():
    if not (Path(p).is_file() if files_only else Path(p).exists()):
      raise ValueError(f"data.paths.{split}: expected {expected}, got {p!r}")
    if not os.access(p, os.R_OK | (os.X_OK if Path(p).is_dir() else 0)):
      raise ValueError(f"data.paths.{split}: cannot read {p!r} (permission denied); expected {expected} this user "
                       "can read")
  return builder_cls(split_paths=split_paths, data_dir=data_dir or DEFAULT_DATA_DIR, file_format="array_record",
                     **kwargs)


PREPARED_FILE = "sslax_prepared.json"
# what TFDS leaves when a preparation is interrupted (tfds.core.utils.incomplete_dir)
_INCOMPLETE = re.compile(r"^incomplete\..+$")


def _damage(data_dir: str) -> str | None:
  """None when every file recorded in `data_dir`'s PREPARED_FILE has its recorded size; else what
  is wrong, naming the file."""
  with open(os.path.join(data_dir, PREPARED_FILE)) as f:
    sizes = json.load(f)["sizes"]
  for name, size in sorted(sizes.items()):
    path = os.path.join(data_dir, name)
    if not os.path.exists(path):
      return f"{path} is missing"
    if os.path.getsize(path) != size:
      return f"{path} has {os.path.getsize(path)} bytes, expected {size} (truncated or overwritten)"
  return None


@contextlib.contextmanager
def _preparing(folder: str):
  """Holds an exclusive lock on `<folder>/.sslax-prepare.lock` (another process preparing the
  same data waits, then finds it prepared) and removes what interrupted preparations left."""
  writable_dir(folder)
  with open(os.path.join(folder, ".sslax-prepare.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    for name in os.listdir(folder):
      if _INCOMPLETE.match(name):
        log.info("data: removing %s, left by an interrupted preparation", os.path.join(folder, name))
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    yield


def _note_identity(builder) -> None:
  """Logs, in one line, that the files of an earlier cache of the same paths and settings changed,
  and records this cache as theirs (`<data_dir>/<builder>/sources.json`)."""
  index_path = os.path.join(os.path.dirname(os.path.dirname(builder.data_dir)), "sources.json")
  try:
    with open(index_path) as f:
      index = json.load(f)
  except (OSError, ValueError):
    index = {}
  name = os.path.basename(os.path.dirname(builder.data_dir))
  old = index.get(builder.identity)
  if old and old != name:
    log.warning("data: the files changed since they were prepared into %s; preparing them again (as %s)", old, name)
  index[builder.identity] = name
  tmp = f"{index_path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(index, f, indent=1)
  os.replace(tmp, index_path)


def prepared_sources(builder, split_paths: Mapping[str, str], *, what: str, where_sep: str = "") -> dict[str, Any]:
  """Prepares a local-files TFDS `builder` once (its `skipped` list of bad examples, each a message
  starting with the file's path, saved beside the data) and opens every split.

  Prepared data whose files were truncated or removed since is prepared again (said so); so is
  an interrupted preparation, whose leftovers are removed first.

  Returns split name -> a grain-compatible TFDS data source with `skipped_examples`, the bad
  examples of that split's path left out under on_bad_example='skip' (with why); a warning
  counts them (`what`: "file", "row", ...)."""
  data_dir = builder.data_dir
  marker = os.path.join(data_dir, PREPARED_FILE)
  damage = _damage(data_dir) if os.path.exists(marker) else None
  if damage or not os.path.exists(marker):
    with _preparing(os.path.dirname(data_dir)):
      if os.path.exists(marker) and _damage(data_dir) is None:
        pass  # another process prepared it while this one waited
      else:
        if damage:
          log.warning("data: the prepared data in %s is damaged (%s); preparing it again", data_dir, damage)
        if os.path.exists(data_dir):
          shutil.rmtree(data_dir)
        _note_identity(builder)
        builder.download_and_prepare()
        with open(os.path.join(data_dir, "skipped_examples.json"), "w") as f:
          json.dump(builder.skipped, f, indent=1)
        sizes = {n: os.path.getsize(os.path.join(data_dir, n)) for n in os.listdir(data_dir)
                 if os.path.isfile(os.path.join(data_dir, n))}
        with open(marker + ".tmp", "w") as f:
          json.dump({"sizes": sizes}, f, indent=1)
        os.replace(marker + ".tmp", marker)  # the marker last: its presence means the rest is complete
  with open(os.path.join(data_dir, "skipped_examples.json")) as f:
    skipped = json.load(f)
  if skipped:
    log.warning("data: left out %d bad %s(s) (data.on_bad_example='skip'), e.g. %s", len(skipped), what, skipped[0])
  sources = {}
  for split in split_paths:
    source = builder.as_data_source(split)
    source.skipped_examples = [s for s in skipped if s.startswith(str(split_paths[split]) + where_sep)]
    sources[split] = source
  return sources


def tfds_source(name: str, split: str, data_dir: str | None = None, download: bool = True):
  """A stock TFDS dataset by name (e.g. `cifar10`, `imagenet2012`) as an array_record data source.

  Preparing a stock dataset the first time needs TensorFlow (`pip install
  sslax[tf]`) and the internet (or, for datasets such as imagenet2012, the
  files in TFDS's `manual_dir`); reading it afterwards needs neither. What is
  missing is named before anything is downloaded (`preparing_needs`).
  """
  import tensorflow_datasets as tfds

  try:
    builder = tfds.builder(name, data_dir=data_dir or DEFAULT_DATA_DIR, file_format="array_record")
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(f"data.name: expected a TFDS dataset name (tfds.list_builders()), got {name!r}") from None
  if download and not builder.is_prepared():
    missing = preparing_needs(builder)
    if missing:
      raise ValueError(
          f"data.name: preparing the TFDS dataset {name!r} under {builder.data_dir} needs {' and '.join(missing)}. "
          "Prepare it on a machine that has them and copy data.data_dir here, or point data.source "
          "('image_folder', 'audio_folder', 'text_files', ...) and data.paths at local files "
          "(sslax.data.sources.get_source lists them)")
    with _preparing(os.path.dirname(os.fspath(builder.data_dir))):  # checked writable; leftovers removed
      builder.download_and_prepare(file_format="array_record")
  return builder.as_data_source(split)


def preparing_needs(builder, timeout: float = 3.0) -> list[str]:
  """What this machine lacks to prepare the stock TFDS `builder` (empty when nothing): TensorFlow,
  the files of a manual download, or the network (a TCP connection to the first download host,
  `timeout` seconds). TFDS itself would retry downloads for minutes, then raise ConnectionError."""
  import importlib.util
  import socket
  from urllib.parse import urlparse

  missing = []
  if importlib.util.find_spec("tensorflow") is None:
    missing.append("TensorFlow (pip install sslax[tf])")
  if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
    manual = os.path.join(os.path.dirname(os.path.dirname(os.fspath(builder.data_dir))), "downloads", "manual")
    if not os.path.isdir(manual) or not os.listdir(manual):
      how = builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()[:200]
      missing.append(f"its files downloaded by hand into {manual} ({how})")
    return missing
  urls = sorted(builder.url_infos or {})
  host = urlparse(urls[0]).hostname if urls else "storage.googleapis.com"
  try:
    socket.create_connection((host, 443), timeout=timeout).close()
  except OSError as e:
    missing.append(f"the network (cannot reach {host}: {e.strerror or e})")
  return missing
