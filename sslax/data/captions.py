"""Images with captions: a folder of images plus a captions CSV (Flickr8k / Flickr30k layout), or a
TFDS captioning dataset by name (`coco_captions`), as records of one image and all its captions.

Layout of a local dataset (`data.source = "image_captions"`):

  data.images    a folder of image files (any PIL format)
  data.captions  a CSV with a header and the columns `image,caption` (one row per caption; an
                 image has as many rows as captions)
  data.paths     split name -> a text file listing that split's image file names, one per line
                 (Flickr's `Flickr_8k.trainImages.txt`); names missing from the folder are left
                 out and counted, so the official lists work on a subset of the images

One record per image, holding all its captions, not one per pair: a batch
then never holds two captions of one image (each would be a false negative
of the other's image under a contrastive loss), an epoch is one pass over
the images as in the papers' image counts, and retrieval needs every
caption of an image anyway. Training draws one caption per image per step
on device, from the step key.

The builder stores {"image": [H, W, 3] uint8 (decoded, as stored), "captions": the captions
joined by newlines, "name"}; `CaptionedImages` tokenizes every caption once when the split is
opened (the tokenizer comes from `data.tokenizer`, trained on the train split's captions when it
is "wordpiece" / "bpe") into `captions` [K, L] int32 and `caption_lengths` [K] int32 (0: no
caption in that slot), K = `data.max_captions`, L = `data.caption_len`. Framing as the packed
text rows (`data.framing`): "eos" ends a caption with the end-of-text token (CLIP's text
tower pools there), "cls_sep" wraps it in [CLS] ... [SEP] (BERT).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sslax.data.builders import BadExampleError, LocalFiles, make_local_builder, prepared_sources
from sslax.data.images import _checked_decode
from sslax.data.packing import encode_all, frame_tokens

log = logging.getLogger("sslax")


def read_captions_csv(path: str | Path) -> dict[str, list[str]]:
  """image file name -> its captions in file order, from a CSV with `image,caption` columns."""
  path = Path(path)
  if not path.is_file():
    raise ValueError(f"data.captions: expected an existing CSV file of `image,caption` rows, got {str(path)!r}")
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    fields = reader.fieldnames or []
    if "image" not in fields or "caption" not in fields:
      raise ValueError(f"data.captions: expected a header with columns 'image' and 'caption' in {path}, "
                       f"got {fields}")
    out: dict[str, list[str]] = {}
    for row in reader:
      caption = (row["caption"] or "").strip()
      if row["image"] and caption:
        out.setdefault(row["image"].strip(), []).append(caption)
  if not out:
    raise ValueError(f"data.captions: no `image,caption` rows in {path} (expected at least one)")
  return out


def read_split_list(path: Path) -> list[str]:
  """The image names of a split list file, one per line (blank lines ignored)."""
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


def _caption_builder_cls():
  import tensorflow_datasets as tfds

  class ImageCaptionFolder(LocalFiles, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """An image folder, a captions CSV and split lists -> TFDS array_record, one record per image."""

    VERSION = tfds.core.Version("1.0.0")
    empty_split = "none of the images listed in {path} is in data.images with a caption (expected at least one)"

    def __init__(self, *, split_paths: Mapping[str, str], images: str, captions: str, on_bad_example: str = "error",
                 **kwargs):
      self._local_files(split_paths, on_bad_example)
      self._images, self._captions_path = Path(images), Path(captions)
      self._captions = read_captions_csv(self._captions_path)
      self.missing: dict[str, int] = {}
      name = self.cache_name(f"|bad={on_bad_example}", also=(self._images, self._captions_path))
      super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          "image": tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8,
                                       encoding=tfds.features.Encoding.BYTES),
          "captions": tfds.features.Text(), "name": tfds.features.Text()}))

    def _read_split(self, split, path):
      missing = 0
      for name in dict.fromkeys(read_split_list(path)):  # a name listed twice is one image
        file = self._images / name
        if not file.is_file():
          missing += 1
          continue
        captions = self._captions.get(name)
        where = str(file)
        if not captions:
          yield name, BadExampleError(f"{where}: no caption for this image in {self._captions_path}")
          continue
        try:
          image = _checked_decode(where, file.read_bytes(), 3, None)
        except BadExampleError as e:
          yield name, e
          continue
        yield name, {"image": image, "captions": "\n".join(captions), "name": name}
      self.missing[split] = missing

  return ImageCaptionFolder


def image_caption_sources(split_paths: Mapping[str, str], images: str, captions: str, data_dir: str | None = None,
                          *, on_bad_example: str = "error") -> dict[str, Any]:
  """Prepares (once, cached under `data_dir`) and opens the splits of an image folder with captions
  (module docstring). Returns split name -> a grain-compatible source of {"image", "captions",
  "name"} records, with `skipped_examples` (bad files left out under on_bad_example='skip')."""
  if not Path(images).is_dir():
    raise ValueError(f"data.images: expected an existing folder of images, got {images!r}")
  builder = make_local_builder(_caption_builder_cls(), split_paths, data_dir,
                               expected="an existing list of image names (one per line)", images=images,
                               captions=captions, on_bad_example=on_bad_example)
  sources = prepared_sources(builder, split_paths, what="image")
  for split, count in builder.missing.items():  # only known on the run that prepared the data
    if count:
      log.info("data.paths.%s: %d listed images are not in %s (left out)", split, count, images)
  return sources


def record_captions(record: Mapping[str, Any]) -> list[str]:
  """The captions of one record: the local builder's newline-joined text, or TFDS
  `coco_captions`' {"captions": {"text": [...]}}."""
  value = record["captions"]
  if isinstance(value, Mapping):
    value = value["text"]
  if isinstance(value, (bytes, str)):
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    return [c for c in text.split("\n") if c.strip()]
  return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(value).ravel()]


def frame_captions(token_lists: list[list[int]], *, caption_len: int, framing: str, special_ids: Mapping[str, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Token ids of captions -> (ids [N, caption_len] int32 padded with the pad id, lengths [N] int32),
  each framed as the packed text rows frame an example (`sslax.data.packing.frame_tokens`)."""
  ids = np.full((len(token_lists), caption_len), special_ids["pad"], np.int32)
  lengths = np.zeros((len(token_lists),), np.int32)
  for i, tokens in enumerate(token_lists):
    row = frame_tokens(tokens, seq_len=caption_len, framing=framing, special_ids=dict(special_ids))
    ids[i, : len(row)] = row
    lengths[i] = len(row)
  return ids, lengths


class CaptionedImages:
  """A random-access source of {"image": [H, W, 3] uint8, "captions": [K, L] int32,
  "caption_lengths": [K] int32} over a source of image records with captions, every caption
  tokenized once here (module docstring). Images with more than K captions keep their first K."""

  def __init__(self, source, tokenizer, *, caption_len: int, max_captions: int, framing: str,
               special_ids: Mapping[str, int]):
    self.source = source
    self.skipped_examples = list(getattr(source, "skipped_examples", ()))
    captions = [record_captions(source[i]) for i in range(len(source))]
    flat = [c for cs in captions for c in cs[:max_captions]]
    ids, lengths = frame_captions([e.ids for e in encode_all(tokenizer, flat)], caption_len=caption_len,
                                  framing=framing, special_ids=special_ids)
    n = len(source)
    self.captions = np.full((n, max_captions, caption_len), special_ids["pad"], np.int32)
    self.caption_lengths = np.zeros((n, max_captions), np.int32)
    at = 0
    for i, cs in enumerate(captions):
      k = min(len(cs), max_captions)
      self.captions[i, :k], self.caption_lengths[i, :k] = ids[at: at + k], lengths[at: at + k]
      at += k
    self.texts = captions  # the caption strings, for reports

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self.source[index]
    return {"image": np.asarray(record["image"]), "captions": self.captions[index],
            "caption_lengths": self.caption_lengths[index]}

  def __repr__(self) -> str:
    return f"CaptionedImages(n={len(self)}, captions={self.captions.shape[1:]})"


def caption_tokenizer(data_config, train_texts):
  """`data.tokenizer` (a path, or "wordpiece" / "bpe" trained once on `train_texts()` and cached,
  keyed by the captions CSV and the train list), its special ids checked."""
  import ml_collections

  from sslax.data.tokenize import data_tokenizer

  d = ml_collections.ConfigDict(data_config.to_dict())
  if d.source == "image_captions":
    d.paths = {d.train_split: [d.captions, d.paths[d.train_split]]}
  else:  # a TFDS dataset: keyed by its name and split (its files are TFDS's)
    d.paths, d.text_column = {d.train_split: []}, f"tfds:{d.name}:{d.train_split}"
  return data_tokenizer(d, train_texts)


def captioned_source(data_config, split: str) -> CaptionedImages:
  """Split `split` of the captioned images `data_config` names (`source` "image_captions" or
  "tfds" with a captioning `name`), tokenized."""
  d = data_config
  if d.source == "image_captions":
    paths = dict(d.paths)
    if split not in paths:
      raise ValueError(f"data.paths: expected a list file for split {split!r}, got splits {sorted(paths)}")
    raw = image_caption_sources(paths, d.images, d.captions, d.get("data_dir"),
                                on_bad_example=d.get("on_bad_example", "error"))
    open_split = raw.__getitem__
  else:
    from sslax.data.builders import tfds_source

    def open_split(s):
      return tfds_source(d.name, s, d.get("data_dir"))

  def train_texts():
    source = open_split(d.train_split)
    for i in range(len(source)):
      yield from record_captions(source[i])

  tok = caption_tokenizer(d, train_texts)
  return CaptionedImages(open_split(split), tok, caption_len=int(d.caption_len), max_captions=int(d.max_captions),
                         framing=d.framing, special_ids=dict(d.special_ids))
