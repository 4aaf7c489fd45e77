"""Local image folders and tars (`<class>/<image>`, as torchvision's ImageFolder) through a TFDS
builder into array_record: {"image": [H, W, C] uint8, "label": int}."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from sslax.data.builders import BadExampleError, LocalFiles, make_local_builder, prepared_sources

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


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

  class ImageFolderArrays(LocalFiles, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Local `<class>/<image>` folders or tars -> TFDS array_record, decoded uint8 pixels.

    Images are stored decoded (not re-encoded) so reading needs neither
    TensorFlow nor an image codec. Labels are class folder names in
    alphabetical order, as torchvision's ImageFolder.
    """

    VERSION = tfds.core.Version("1.0.0")
    empty_split = "no usable `<class>/<image>` files in {path} (expected at least one)"

    def __init__(self, *, split_paths: Mapping[str, str], resize: bool = False, on_bad_example: str = "error",
                 **kwargs):
      self._local_files(split_paths, on_bad_example)
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
      name = self.cache_name(f"|resize={resize}|bad={on_bad_example}")
      super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "image": tfds.features.Tensor(shape=(None, None, self._channels), dtype=np.uint8,
                                       encoding=tfds.features.Encoding.BYTES),
          "label": tfds.features.ClassLabel(names=self._classes),
      }))

    def _read_split(self, split, path):
      index = {c: i for i, c in enumerate(self._classes)}
      for cls, fname, data in _iter_image_folder(path):
        if cls not in index:
          raise ValueError(f"data.paths: class folder {cls!r} in {path} is not among {self._classes}")
        where = f"{path}/{cls}/{fname}" if path.is_dir() else f"{path}:{cls}/{fname}"
        try:
          image = _checked_decode(where, data, self._channels, self._size)
        except BadExampleError as e:
          yield f"{cls}/{fname}", e
          continue
        yield f"{cls}/{fname}", {"image": image, "label": index[cls]}

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
  builder = make_local_builder(_image_folder_builder_cls(), split_paths, data_dir,
                               expected="an existing folder or tar", files_only=False, resize=resize,
                               on_bad_example=on_bad_example)
  return prepared_sources(builder, split_paths, what="file")
