"""The registry of data sources: `get_source(data_config, split)` opens what `data.source` names,
from the data-type modules (images, audio, text, CoNLL, packed token rows), stock TFDS by name, or
the embedded digits; plus in-memory sources.

Every source is a grain `RandomAccessDataSource` (`__len__`, `__getitem__`)
of dict records; which keys a method reads is the method's `inputs`
(`sslax.data.modality`), not the source's.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sslax.data.audio import FSDD_PATTERN, audio_folder_sources
from sslax.data.captions import captioned_source
from sslax.data.builders import BadExampleError, tfds_source  # noqa: F401  (sslax.data.sources.BadExampleError)
from sslax.data.images import image_folder_sources
from sslax.data.packing import packed_text_source
from sslax.data.text import text_file_sources


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


def get_source(data_config, split: str):
  """Opens split `split` of the dataset that `data_config` names (see experiments/ configs).

  `data_config.source` is "digits" (embedded), "image_folder" (local
  folders/tars in `data_config.paths`), "audio_folder" (local wav folders,
  see `sslax.data.audio`), "text_files" (local text / TSV files, see
  `sslax.data.text`), "image_captions" (an image folder with a captions CSV, see
  `sslax.data.captions`; also TFDS captioning datasets when `data.caption_len` is set) or "tfds"
  (`data_config.name`). With `data.seq_len` set,
  text is tokenized and packed into rows of that many tokens (`sslax.data.packing`).
  """
  kind = data_config.source
  if kind == "image_captions" or data_config.get("caption_len"):  # images with tokenized captions
    source = captioned_source(data_config, split)
  elif data_config.get("seq_len"):  # token data: tokenized and packed rows (sslax.data.packing)
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
    paths = dict(data_config.paths)
    if split not in paths:
      raise ValueError(f"data.paths: expected a path for split {split!r}, got splits {sorted(paths)}")
    source = audio_folder_sources(
        paths, data_config.get("data_dir"), split_filters=dict(data_config.get("split_filter") or {}),
        pattern=data_config.get("filename_pattern") or FSDD_PATTERN, labels_csv=data_config.get("labels_csv"),
        sample_rate=data_config.sample_rate, on_bad_example=data_config.get("on_bad_example", "error"))[split]
  elif kind == "text_files":
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
    raise ValueError(f"data.source: expected one of ['audio_folder', 'digits', 'image_captions', 'image_folder', "
                     f"'text_files', 'tfds'], got {kind!r}")
  if len(source) == 0:
    raise ValueError(f"data: split {split!r} of source {kind!r} is empty (expected at least one example)")
  return source
