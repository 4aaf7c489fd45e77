"""What the local-file TFDS builders share (image, audio, text and CoNLL folders), and stock TFDS
datasets by name: a leaf module that the data-type modules import, so none of them imports
another (`sources.py`, the registry, imports them all).

TFDS has the builder base classes but not what local files need on top of
them: a cache key from the files' paths, modification times and settings
(so an edited file is prepared again), bad examples skipped or raised by
`data.on_bad_example`, an empty split refused with its path, and the
skipped examples kept beside the prepared data. `LocalFiles` is that, once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

log = logging.getLogger("sslax")

DEFAULT_DATA_DIR = os.path.join(os.path.expanduser("~"), ".cache", "sslax", "tfds")


class BadExampleError(ValueError):
  """A data file that cannot be used; the message names it."""


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

  def cache_name(self, settings: str) -> str:
    """`<first path's stem>_<hash>` of every split's path and modification time and `settings`."""
    key = "|".join(f"{k}={p.resolve()}:{p.stat().st_mtime_ns}" for k, p in sorted(self._split_paths.items()))
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
  return builder_cls(split_paths=split_paths, data_dir=data_dir or DEFAULT_DATA_DIR, file_format="array_record",
                     **kwargs)


def prepared_sources(builder, split_paths: Mapping[str, str], *, what: str, where_sep: str = "") -> dict[str, Any]:
  """Prepares a local-files TFDS `builder` once (its `skipped` list of bad examples, each a message
  starting with the file's path, saved beside the data) and opens every split.

  Returns split name -> a grain-compatible TFDS data source with `skipped_examples`, the bad
  examples of that split's path left out under on_bad_example='skip' (with why); a warning
  counts them (`what`: "file", "row", ...)."""
  skipped_file = os.path.join(builder.data_dir, "skipped_examples.json")
  if not os.path.exists(skipped_file):
    builder.download_and_prepare()
    tmp = f"{skipped_file}.{os.getpid()}.tmp"  # per process: hosts sharing data_dir may prepare at once
    with open(tmp, "w") as f:
      json.dump(builder.skipped, f, indent=1)
    os.replace(tmp, skipped_file)
  with open(skipped_file) as f:
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
  sslax[tf]`) and the internet; reading it afterwards needs neither.
  """
  import tensorflow_datasets as tfds

  builder = tfds.builder(name, data_dir=data_dir or DEFAULT_DATA_DIR, file_format="array_record")
  if download:
    builder.download_and_prepare(file_format="array_record")
  return builder.as_data_source(split)
