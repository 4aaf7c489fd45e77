"""Local speech data: folders (or tars) of wav files -> a TFDS builder -> array_record, read with grain.

Labels come from the file names through a regular expression with named
groups (the Free Spoken Digit Dataset's `{digit}_{speaker}_{index}.wav` by
default) or from a CSV file (`file,label[,speaker]`). A split can be a
filter on a numeric field of the name, as FSDD's usual split (index 0-4 of
each speaker and digit is test, the rest train).

Records: {"audio": float32 [T] in [-1, 1] at `sample_rate`, "label": int,
"speaker": int}. Decoding uses scipy (no TensorFlow, no audio codec);
resampling uses `scipy.signal.resample_poly`.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
import tarfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from sslax.data.builders import BadExampleError, LocalFiles, make_local_builder, prepared_sources

FSDD_PATTERN = r"(?P<label>\d+)_(?P<speaker>[^_]+)_(?P<index>\d+)\.wav"
_FILTER = re.compile(r"^\s*(\w+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+)\s*$")
_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
        "!=": np.not_equal}


def parse_split_filter(expression: str, field: str = "data.split_filter"):
  """`"index<5"` -> a predicate on a dict of named fields; raises ValueError naming `field`."""
  match = _FILTER.match(expression or "")
  if not match:
    raise ValueError(f"{field}: expected '<name> <op> <integer>' with op one of {sorted(_OPS)}, "
                     f"got {expression!r}")
  name, op, value = match.group(1), match.group(2), int(match.group(3))
  return lambda fields: bool(_OPS[op](int(fields[name]), value)), name


def _iter_wav_files(path: Path) -> Iterator[tuple[str, bytes]]:
  """(relative name, bytes) of every .wav under a directory or in a (gzipped) tar, sorted."""
  if path.is_dir():
    for f in sorted(path.rglob("*")):
      if f.is_file() and f.suffix.lower() == ".wav":
        yield str(f.relative_to(path)), f.read_bytes()
    return
  with tarfile.open(path, "r:*") as tar:
    members = sorted((m for m in tar if m.isfile() and m.name.lower().endswith(".wav")), key=lambda m: m.name)
    for member in members:
      yield member.name.lstrip("./"), tar.extractfile(member).read()


def decode_wav(where: str, data: bytes, sample_rate: int) -> np.ndarray:
  """Decodes a wav file to mono float32 [T] in [-1, 1] at `sample_rate`.

  Raises BadExampleError naming `where` for a corrupt or truncated file, an
  empty recording or non-finite samples.
  """
  import scipy.io.wavfile
  import scipy.signal

  try:
    rate, samples = scipy.io.wavfile.read(io.BytesIO(data))
  except Exception as e:  # scipy raises ValueError, EOFError, struct.error... on bad files
    raise BadExampleError(f"{where}: cannot decode the wav file ({type(e).__name__}: {e})") from e
  samples = np.asarray(samples)
  if samples.dtype == np.uint8:  # 8-bit wav is unsigned
    audio = (samples.astype(np.float32) - 128.0) / 128.0
  elif np.issubdtype(samples.dtype, np.integer):
    audio = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
  else:
    audio = samples.astype(np.float32)
  if audio.ndim == 2:  # channels last: average to mono
    audio = audio.mean(axis=1)
  if audio.size == 0:
    raise BadExampleError(f"{where}: expected a non-empty recording, got 0 samples")
  if not np.all(np.isfinite(audio)):
    raise BadExampleError(f"{where}: the recording has non-finite samples")
  if rate != sample_rate:
    g = math.gcd(int(rate), int(sample_rate))
    audio = scipy.signal.resample_poly(audio, sample_rate // g, rate // g).astype(np.float32)
  return audio


def _read_labels_csv(path: str) -> dict[str, dict[str, str]]:
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  if not rows or "file" not in rows[0] or "label" not in rows[0]:
    raise ValueError(f"data.labels_csv: expected a header with columns 'file' and 'label', got "
                     f"{list(rows[0]) if rows else 'an empty file'} in {path}")
  return {r["file"]: r for r in rows}


def _sorted_names(values) -> list[str]:
  values = sorted(set(values))
  return sorted(values, key=int) if all(v.lstrip("-").isdigit() for v in values) else values


def _audio_folder_builder_cls():
  import tensorflow_datasets as tfds

  class AudioFolderArrays(LocalFiles, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Local wav folders or tars -> TFDS array_record of decoded float32 waveforms."""

    VERSION = tfds.core.Version("1.0.0")
    empty_split = "no usable wav files in {path} (after data.split_filter; expected at least one)"

    def __init__(self, *, split_paths: Mapping[str, str], split_filters: Mapping[str, str], pattern: str,
                 labels_csv: str | None, sample_rate: int, on_bad_example: str = "error", **kwargs):
      self._local_files(split_paths, on_bad_example)
      if labels_csv and not os.path.isfile(labels_csv):
        raise ValueError(f"data.labels_csv: expected an existing CSV file (file,label[,speaker]), got {labels_csv!r}")
      self._csv = _read_labels_csv(labels_csv) if labels_csv else None
      try:
        self._pattern = re.compile(pattern)
      except re.error as e:
        raise ValueError(f"data.filename_pattern: expected a regular expression, got {pattern!r} ({e})") from None
      # the fields a split filter or the labels read: named groups of the pattern, or the CSV's columns
      if self._csv is not None:
        fields, where = set(next(iter(self._csv.values()))), f"a column of data.labels_csv {labels_csv!r}"
      else:
        fields = set(self._pattern.groupindex)
        where = f"a named group (?P<name>...) of data.filename_pattern {pattern!r}"
      if "label" not in fields:
        raise ValueError(f"data.filename_pattern: expected a named group (?P<label>...), got {pattern!r} with groups "
                         f"{sorted(fields)}")
      self._filters = {}
      for k, v in split_filters.items():
        keep, name = parse_split_filter(v, f"data.split_filter.{k}")
        if name not in fields:
          raise ValueError(f"data.split_filter.{k}: {v!r} filters on {name!r}, expected {where} "
                           f"(it has {sorted(fields)})")
        self._filters[k] = keep
      self._rate = int(sample_rate)
      labels, speakers = set(), set()
      for split, path in self._split_paths.items():
        for name in self._names(path):
          fields = self._fields(path, name)
          if fields is not None:
            labels.add(fields["label"])
            speakers.add(fields.get("speaker", ""))
      if not labels:
        raise ValueError(f"data.paths: no wav files matching data.filename_pattern {pattern!r} (or listed in "
                         f"data.labels_csv) in {sorted(str(p) for p in self._split_paths.values())}")
      self._labels, self._speakers = _sorted_names(labels), _sorted_names(speakers)
      name = self.cache_name(f"|{sorted(split_filters.items())}|{pattern}|{labels_csv}|{sample_rate}|"
                             f"bad={on_bad_example}", also=(labels_csv,) if labels_csv else ())
      super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

    @staticmethod
    def _names(path: Path) -> list[str]:
      if path.is_dir():
        return sorted(str(f.relative_to(path)) for f in path.rglob("*.wav"))
      with tarfile.open(path, "r:*") as tar:
        return sorted(m.name.lstrip("./") for m in tar if m.isfile() and m.name.lower().endswith(".wav"))

    def _fields(self, path: Path, name: str) -> dict[str, str] | None:
      if self._csv is not None:
        row = self._csv.get(name) or self._csv.get(os.path.basename(name))
        return None if row is None else {"speaker": "", **row}
      match = self._pattern.fullmatch(os.path.basename(name))
      return None if match is None else match.groupdict()

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "audio": tfds.features.Tensor(shape=(None,), dtype=np.float32, encoding=tfds.features.Encoding.BYTES),
          "label": tfds.features.ClassLabel(names=self._labels),
          "speaker": tfds.features.ClassLabel(names=self._speakers),
      }))

    def _read_split(self, split, path):
      keep = self._filters.get(split)
      label_index = {c: i for i, c in enumerate(self._labels)}
      speaker_index = {c: i for i, c in enumerate(self._speakers)}
      for name, data in _iter_wav_files(path):
        fields = self._fields(path, name)
        if fields is None or (keep is not None and not keep(fields)):
          continue
        where = f"{path}/{name}" if path.is_dir() else f"{path}:{name}"
        try:
          audio = decode_wav(where, data, self._rate)
        except BadExampleError as e:
          yield name, e
          continue
        yield name, {"audio": audio, "label": label_index[fields["label"]],
                     "speaker": speaker_index[fields.get("speaker", "")]}

  return AudioFolderArrays


def audio_folder_sources(split_paths: Mapping[str, str], data_dir: str | None = None, *,
                         split_filters: Mapping[str, str] | None = None, pattern: str = FSDD_PATTERN,
                         labels_csv: str | None = None, sample_rate: int = 16000,
                         on_bad_example: str = "error") -> dict[str, Any]:
  """Prepares (once, cached under `data_dir`) and opens local wav folders or tars.

  Args:
    split_paths: split name -> a directory or `.tar(.gz)` of wav files; several
      splits may name the same folder and be told apart by `split_filters`.
    split_filters: split name -> '<field> <op> <int>' on a named group of
      `pattern`, e.g. {"train": "index>=5", "test": "index<5"} for FSDD.
    pattern: a regular expression with named groups `label` (and optionally
      `speaker`) matched against each file's base name; files that do not
      match are not used.
    labels_csv: instead of `pattern`, a CSV with columns `file,label[,speaker]`.
    sample_rate: the rate every recording is resampled to.
    on_bad_example: "error" raises `BadExampleError` naming the first corrupt,
      truncated or empty file; "skip" leaves such files out and lists them
      in `skipped_examples`.

  Returns:
    split name -> a grain-compatible TFDS data source of
    {"audio": float32 [T], "label": int, "speaker": int}.
  """
  builder = make_local_builder(
      _audio_folder_builder_cls(), split_paths, data_dir, expected="an existing folder or tar of wav files",
      files_only=False, split_filters=dict(split_filters or {}), pattern=pattern, labels_csv=labels_csv,
      sample_rate=sample_rate, on_bad_example=on_bad_example)
  sources = prepared_sources(builder, split_paths, what="file")
  for source in sources.values():
    source.num_classes = {"label": len(builder._labels), "speaker": len(builder._speakers)}
  return sources

