"""Data sources: TFDS by name, local image folders through a TFDS builder, embedded digits.

Every source returned here is a grain `RandomAccessDataSource` (it has
`__len__` and `__getitem__`) whose records are dicts with an `image`
[H, W, C] uint8 array and an int `label`.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

log = logging.getLogger("sslax")

DEFAULT_DATA_DIR = os.path.join(os.path.expanduser("~"), ".cache", "sslax", "tfds")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class ArraySource:
  """An in-memory grain data source over `images` [N, H, W, C] uint8 and `labels` [N]."""

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    if images.ndim != 4 or images.dtype != np.uint8:
      raise ValueError(f"images: expected uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    if len(images) != len(labels):
      raise ValueError(f"labels: expected {len(images)} labels (one per image), got {len(labels)}")
    self.images, self.labels = images, np.asarray(labels, np.int32)

  def __len__(self) -> int:
    return len(self.images)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {"image": self.images[index], "label": self.labels[index]}

  def __repr__(self) -> str:
    return f"ArraySource(n={len(self)}, image_shape={self.images.shape[1:]})"


class Subset:
  """The records `indices` of a random-access `source`, in that order (repeats allowed): a few
  labelled examples of a split. Attributes of the source (`tag_names`) pass through."""

  def __init__(self, source, indices):
    self.source, self.indices = source, [int(i) for i in indices]
    if not self.indices:
      raise ValueError("indices: expected at least one example, got none")

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return self.source[self.indices[index]]

  def __getattr__(self, name):
    if name in ("source", "indices"):
      raise AttributeError(name)
    return getattr(self.source, name)

  def __repr__(self) -> str:
    return f"Subset(n={len(self)}, of={self.source!r})"


def digits_arrays(split: str, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled `load_digits` (1,797 8x8 handwritten digits, UCI) as uint8 [N, 8, 8, 1].

  The split is a fixed stratified 70/30 train/test partition, so every run
  and every test probes on the same held-out digits.
  """
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  digits = load_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  idx_train, idx_test = train_test_split(np.arange(len(images)), test_size=test_fraction,
                                         random_state=seed, stratify=digits.target)
  idx = {"train": idx_train, "test": idx_test}.get(split)
  if idx is None:
    raise ValueError(f"data.split: expected 'train' or 'test' for digits, got {split!r}")
  return images[idx], digits.target[idx].astype(np.int32)


def _iter_image_folder(path: Path) -> Iterator[tuple[str, str, bytes]]:
  """Yields (class_name, file_name, bytes) from a directory or a (gzipped) tar of `<class>/<file>`."""
  if path.is_dir():
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
      for f in sorted(class_dir.iterdir()):
        if f.suffix.lower() in _IMAGE_SUFFIXES:
          yield class_dir.name, f.name, f.read_bytes()
    return
  with tarfile.open(path, "r:*") as tar:
    for member in tar:
      parts = Path(member.name).parts
      parts = parts[1:] if parts and parts[0] == "." else parts
      if member.isfile() and len(parts) == 2 and parts[1].lower().endswith(_IMAGE_SUFFIXES):
        yield parts[0], parts[1], tar.extractfile(member).read()


def _class_names(path: Path) -> list[str]:
  if path.is_dir():
    return sorted(p.name for p in path.iterdir() if p.is_dir())
  names = set()
  with tarfile.open(path, "r:*") as tar:
    for member in tar:
      parts = [p for p in Path(member.name).parts if p != "."]
      if member.isfile() and len(parts) == 2:
        names.add(parts[0])
  return sorted(names)


def _decode(data: bytes, channels: int | None = None) -> np.ndarray:
  """Decoded uint8 [H, W, C]; other modes (palette, RGBA, CMYK, 16-bit) are converted to
  `channels` (1: grayscale, 3: RGB) as torchvision's ImageFolder converts to RGB."""
  from PIL import Image

  with Image.open(io.BytesIO(data)) as im:
    if channels is None:
      channels = 1 if im.mode in ("L", "1", "I;16", "I", "F") else 3
    im = im.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(im, np.uint8)
  return arr[..., None] if arr.ndim == 2 else arr


class BadExampleError(ValueError):
  """A data file that cannot be used; the message names it."""


def _checked_decode(where: str, data: bytes, channels: int, size: tuple[int, int] | None) -> np.ndarray:
  """Decodes one file, raising BadExampleError naming `where` when it is corrupt, truncated or
  (when `size` is given) not of that height and width."""
  try:
    image = _decode(data, channels)
  except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
    raise BadExampleError(f"{where}: cannot decode the image ({type(e).__name__}: {e})") from e
  if size is not None and tuple(image.shape[:2]) != tuple(size):
    raise BadExampleError(f"{where}: expected a {size[0]}x{size[1]} image (as the first image; set "
                          f"data.image_size to resize), got {image.shape[0]}x{image.shape[1]}")
  return image


def _image_folder_builder_cls():
  import tensorflow_datasets as tfds

  class ImageFolderArrays(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Local `<class>/<image>` folders or tars -> TFDS array_record, decoded uint8 pixels.

    Images are stored decoded (not re-encoded) so reading needs neither
    TensorFlow nor an image codec. Labels are class folder names in
    alphabetical order, as torchvision's ImageFolder.
    """

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, split_paths: Mapping[str, str], resize: bool = False, on_bad_example: str = "error",
                 **kwargs):
      self._split_paths = {k: Path(v) for k, v in split_paths.items()}
      self._on_bad = on_bad_example
      self.skipped: list[str] = []
      first = next(iter(self._split_paths.values()))
      self._classes = _class_names(first)
      self._channels, self._size = None, None
      for path in self._split_paths.values():  # the first readable image sets the format
        for cls, fname, data in _iter_image_folder(path):
          try:
            sample = _decode(data)
          except Exception:
            continue
          self._channels = sample.shape[-1]
          self._size = None if resize else sample.shape[:2]
          break
        if self._channels is not None:
          break
      if self._channels is None:
        raise ValueError(f"data.paths: no readable `<class>/<image>` files found in "
                         f"{sorted(str(p) for p in self._split_paths.values())}")
      key = "|".join(f"{k}={p.resolve()}:{p.stat().st_mtime_ns}" for k, p in sorted(self._split_paths.items()))
      key += f"|resize={resize}|bad={on_bad_example}"
      name = f"{first.name.split('.')[0]}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
      super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "image": tfds.features.Tensor(shape=(None, None, self._channels), dtype=np.uint8,
                                       encoding=tfds.features.Encoding.BYTES),
          "label": tfds.features.ClassLabel(names=self._classes),
      }))

    def _split_generators(self, dl_manager):
      return {split: self._generate_examples(split, path) for split, path in self._split_paths.items()}

    def _generate_examples(self, split, path):
      index = {c: i for i, c in enumerate(self._classes)}
      count = 0
      for cls, fname, data in _iter_image_folder(path):
        if cls not in index:
          raise ValueError(f"data.paths: class folder {cls!r} in {path} is not among {self._classes}")
        where = f"{path}/{cls}/{fname}" if path.is_dir() else f"{path}:{cls}/{fname}"
        try:
          image = _checked_decode(where, data, self._channels, self._size)
        except BadExampleError as e:
          if self._on_bad == "error":
            raise BadExampleError(f"{e} (set data.on_bad_example='skip' to leave such files out)") from None
          self.skipped.append(str(e))
          continue
        count += 1
        yield f"{cls}/{fname}", {"image": image, "label": index[cls]}
      if not count:  # TFDS would stop on an opaque AssertionError
        raise ValueError(f"data.paths.{split}: split {split!r} is empty: no usable `<class>/<image>` "
                         f"files in {path} (expected at least one)")

  return ImageFolderArrays


def image_folder_sources(split_paths: Mapping[str, str], data_dir: str | None = None, *,
                         resize: bool = False, on_bad_example: str = "error") -> dict[str, Any]:
  """Prepares (once, cached under `data_dir`) and opens local image folders or tars.

  Args:
    split_paths: split name -> a directory or a `.tar` / `.tar.gz` of
      `<class>/<image>` files, e.g. {"train": ".../cifar10/train.tar.gz"}.
    data_dir: where the array_record files go (default ~/.cache/sslax/tfds).
    resize: images will be resized later (`data.image_size` is set), so
      they may differ in size; otherwise all must match the first.
    on_bad_example: "error" raises `BadExampleError` naming the first
      corrupt, truncated or wrongly sized file; "skip" leaves such files out.

  Returns:
    split name -> a grain-compatible TFDS data source. Each has
    `skipped_examples`, the list of files left out (with why).
  """
  for split, p in split_paths.items():
    if not Path(p).exists():
      raise ValueError(f"data.paths.{split}: expected an existing folder or tar, got {p!r}")
  builder = _image_folder_builder_cls()(split_paths=split_paths, resize=resize, on_bad_example=on_bad_example,
                                        data_dir=data_dir or DEFAULT_DATA_DIR,
                                        file_format="array_record")
  return prepared_sources(builder, split_paths, what="file")


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


def get_source(data_config, split: str):
  """Opens split `split` of the dataset that `data_config` names (see experiments/ configs).

  `data_config.source` is "digits" (embedded), "image_folder" (local
  folders/tars in `data_config.paths`), "audio_folder" (local wav folders,
  see `sslax.data.audio`), "text_files" (local text / TSV files, see
  `sslax.data.text`) or "tfds" (`data_config.name`). With `data.seq_len` set,
  text is tokenized and packed into rows of that many tokens (`sslax.data.packing`).
  """
  kind = data_config.source
  if data_config.get("seq_len"):  # token data: tokenized and packed rows (sslax.data.packing)
    from sslax.data.packing import packed_text_source

    source = packed_text_source(data_config, split)
  elif kind == "digits":
    source = ArraySource(*digits_arrays(split))
  elif kind == "image_folder":
    paths = dict(data_config.paths)
    if split not in paths:
      raise ValueError(f"data.paths: expected a path for split {split!r}, got splits {sorted(paths)}")
    source = image_folder_sources(paths, data_config.get("data_dir"), resize=bool(data_config.get("image_size")),
                                  on_bad_example=data_config.get("on_bad_example", "error"))[split]
  elif kind == "audio_folder":
    from sslax.data.audio import FSDD_PATTERN, audio_folder_sources

    paths = dict(data_config.paths)
    if split not in paths:
      raise ValueError(f"data.paths: expected a path for split {split!r}, got splits {sorted(paths)}")
    source = audio_folder_sources(
        paths, data_config.get("data_dir"), split_filters=dict(data_config.get("split_filter") or {}),
        pattern=data_config.get("filename_pattern") or FSDD_PATTERN, labels_csv=data_config.get("labels_csv"),
        sample_rate=data_config.sample_rate, on_bad_example=data_config.get("on_bad_example", "error"))[split]
  elif kind == "text_files":
    from sslax.data.text import text_file_sources

    paths = dict(data_config.paths)
    if split not in paths:
      raise ValueError(f"data.paths: expected a path for split {split!r}, got splits {sorted(paths)}")
    source = text_file_sources(paths, data_config.get("data_dir"), fmt=data_config.get("text_format", "lines"),
                               text_column=data_config.get("text_column"),
                               label_column=data_config.get("label_column", "label"),
                               on_bad_example=data_config.get("on_bad_example", "error"))[split]
  elif kind == "tfds":
    source = tfds_source(data_config.name, split, data_config.get("data_dir"))
  else:
    raise ValueError(f"data.source: expected one of ['audio_folder', 'digits', 'image_folder', 'text_files', "
                     f"'tfds'], got {kind!r}")
  if len(source) == 0:
    raise ValueError(f"data: split {split!r} of source {kind!r} is empty (expected at least one example)")
  return source
