"""What a method reads: a `Modality` names the record keys, their host-side transform, the batch
shapes and dtypes, and the checks a batch must pass.

A method's `inputs` is one of these (`Images`, `Audio`, `TokenRows`) or a
`Combined` of several (image + caption, audio + frame labels, sentence
pairs). The pipeline, `sslax plan`, AOT compilation and the input checks
read them, so no layer below the method guesses its inputs from config keys.

Decisions (where DESIGN.md is silent):

- Training batches hold exactly the method's `keys`; evaluation asks the same
  transform for label keys on top (`transform(extra_keys=("label",))`), so a
  probe can read labels the method never trains on. A key a record lacks is
  an error naming it, except where a modality documents a default.
- Transforms run per record on the host, in grain's worker threads, and give
  fixed-shape NumPy arrays; all randomness (crops, masks) stays on device.
- `validate_batch` runs on one host batch before anything is compiled and
  raises ValueError naming the field, the expected and the actual value.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# Image sizes of the stock TFDS datasets whose size the config need not state.
TFDS_IMAGE_SHAPES = {"cifar10": (32, 32), "cifar100": (32, 32), "stl10": (96, 96), "mnist": (28, 28),
                     "fashion_mnist": (28, 28)}

Transform = Callable[[Mapping[str, Any]], dict[str, np.ndarray]]


def check_batch_entry(batch, key: str, *, rank: int, layout: str, num_devices: int) -> np.ndarray:
  """The checks every batch entry shares: present, of `rank` ("[B, ...]" in `layout`), non-empty
  and divisible over the devices. Returns the entry as an array."""
  if key not in batch:
    raise ValueError(f"batch: expected an {key!r} entry, got keys {sorted(batch)}")
  x = batch[key]
  shape = tuple(np.shape(x))
  if len(shape) != rank:
    raise ValueError(f"batch.{key}: expected rank {rank} {layout}, got rank {len(shape)} shape {shape}")
  if shape[0] == 0:
    raise ValueError(f"batch.{key}: expected a non-empty batch, got batch size 0")
  if shape[0] % num_devices:
    raise ValueError(f"batch.{key}: expected a batch size divisible by the {num_devices} devices, got {shape[0]}")
  return x


def _label(value) -> np.ndarray:
  x = np.asarray(value)
  return x.astype(np.int32) if np.issubdtype(x.dtype, np.integer) or x.dtype == bool else x


class Modality:
  """The protocol: `keys`, `transform`, `batch_spec`, `validate_batch` (see the module docstring)."""

  keys: tuple[str, ...] = ()
  # False when the pretraining records carry no labels to probe on (packed token rows)
  labelled: bool = True

  def convert(self, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """This modality's `keys` of one record as fixed-shape arrays."""
    return {k: np.asarray(record[k]) for k in self.keys}

  def extra(self, record: Mapping[str, Any], key: str) -> np.ndarray:
    """A label (or other) key beside the inputs; integers become int32."""
    if key not in record:
      raise ValueError(f"data: expected records with a {key!r} field, got fields {sorted(record)}")
    return _label(record[key])

  def transform(self, extra_keys: Sequence[str] = ()) -> Transform:
    """The per-record host map to the batch entries: `keys` plus `extra_keys` (labels for probes)."""
    extras = tuple(k for k in extra_keys if k not in self.keys)

    def fn(record):
      out = self.convert(record)
      out.update({k: self.extra(record, k) for k in extras})
      return out

    return fn

  def batch_spec(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """The shapes and dtypes of one global training batch, for `sslax plan` and AOT compilation."""
    raise NotImplementedError(f"{type(self).__name__}.batch_spec")

  def validate_batch(self, batch, num_devices: int) -> None:
    """Default: every key present, non-empty and divisible over the devices; subclasses check more."""
    for key in self.keys:
      if key not in batch:
        raise ValueError(f"batch: expected an {key!r} entry, got keys {sorted(batch)}")
      check_batch_entry(batch, key, rank=max(np.ndim(batch[key]), 1), layout="[B, ...]", num_devices=num_devices)

  def tokens_per_example(self) -> int:
    """Tokens (text), 20 ms frames (speech) or 1 (images) per example, for throughput figures."""
    return 1


@dataclasses.dataclass(frozen=True)
class Images(Modality):
  """{"image": [H, W, C] uint8} records, resized on the host to `image_size` when set.

  Args:
    channels: C, the model's input channels.
    image_size: (H, W) every record is resized to (bilinear); None keeps the records' size.
    dataset: the TFDS name, which fixes (H, W) for `batch_spec` when `image_size` is None.
    min_side: the smallest height and width a method can take.
  """

  channels: int
  image_size: tuple[int, int] | None = None
  dataset: str = ""
  min_side: int = 1
  keys = ("image",)

  def convert(self, record):
    image = np.asarray(record["image"])
    size = self.image_size
    if size is not None and tuple(image.shape[:2]) != tuple(size):
      from PIL import Image

      squeeze = image.shape[-1] == 1
      im = Image.fromarray(image[..., 0] if squeeze else image)
      im = im.resize((size[1], size[0]), Image.BILINEAR)
      image = np.asarray(im, np.uint8)
      image = image[..., None] if squeeze else image
    return {"image": np.asarray(image, np.uint8)}

  def batch_spec(self, batch_size):
    size = self.image_size or TFDS_IMAGE_SHAPES.get(self.dataset)
    if size is None:
      raise ValueError(f"data.image_size: expected (H, W) to plan a run on {self.dataset!r} (its images vary in "
                       "size), got None")
    return {"image": jax.ShapeDtypeStruct((batch_size, *size, self.channels), jnp.uint8)}

  def validate_batch(self, batch, num_devices):
    image = check_batch_entry(batch, "image", rank=4, layout="[B, H, W, C]", num_devices=num_devices)
    shape, dtype = tuple(image.shape), np.dtype(image.dtype)
    if shape[-1] != self.channels:
      raise ValueError(f"batch.image: expected {self.channels} channels (model.in_channels), got {shape[-1]} "
                       f"(shape {shape})")
    if not (dtype == np.uint8 or np.issubdtype(dtype, np.floating)):
      raise ValueError(f"batch.image: expected dtype uint8 or float, got {dtype}")
    if min(shape[1:3]) < self.min_side:
      raise ValueError(f"batch.image: expected height and width >= {self.min_side}, got {shape[1:3]}")


@dataclasses.dataclass(frozen=True)
class Audio(Modality):
  """{"audio": [max_samples] float32 (the first samples, zero-padded), "length": int32} from
  waveform records; random crops happen on device.

  Args:
    max_samples: samples kept per recording.
    min_samples: the shortest batch a method can take (its crop).
    record_keys: maps "audio", "label", "speaker" to the source's names (TFDS `librispeech`:
      {"audio": "speech", "label": "speaker_id", "speaker": "speaker_id"}). A record without a
      "label" or "speaker" gets 0, as unlabelled recordings do.
    crop_samples: the crop the method trains on (throughput figures count its 20 ms frames).
    with_speaker: every batch also carries "speaker" [B] int32 (CPC's same-speaker negatives).
  """

  max_samples: int
  min_samples: int = 1
  record_keys: Mapping[str, str] = dataclasses.field(default_factory=dict)
  crop_samples: int = 0
  with_speaker: bool = False
  keys = ("audio", "length")

  def _name(self, key: str) -> str:
    return dict(self.record_keys).get(key, key)

  def convert(self, record):
    audio = np.asarray(record[self._name("audio")])[: self.max_samples]
    if np.issubdtype(audio.dtype, np.integer):  # PCM -> [-1, 1)
      audio = audio.astype(np.float32) / float(np.iinfo(audio.dtype).max + 1)
    out = np.zeros((self.max_samples,), np.float32)
    out[: len(audio)] = audio
    batch = {"audio": out, "length": np.int32(len(audio))}
    if self.with_speaker:
      batch["speaker"] = self.extra(record, "speaker")
    return batch

  def extra(self, record, key):
    if key in ("label", "speaker"):
      return np.int32(record.get(self._name(key), 0))
    return super().extra(record, key)

  def batch_spec(self, batch_size):
    spec = {"audio": jax.ShapeDtypeStruct((batch_size, self.max_samples), jnp.float32),
            "length": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}
    if self.with_speaker:
      spec["speaker"] = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
    return spec

  def validate_batch(self, batch, num_devices):
    audio = check_batch_entry(batch, "audio", rank=2, layout="[B, samples]", num_devices=num_devices)
    for key in ("length", "speaker") if self.with_speaker else ("length",):
      if key not in batch:
        raise ValueError(f"batch: expected a {key!r} entry, got keys {sorted(batch)}")
    shape, dtype, lengths = tuple(audio.shape), np.dtype(audio.dtype), np.asarray(batch["length"])
    if not np.issubdtype(dtype, np.floating):
      raise ValueError(f"batch.audio: expected a float dtype (waveforms in [-1, 1]), got {dtype}")
    if lengths.shape != shape[:1] or not np.issubdtype(lengths.dtype, np.integer):
      raise ValueError(f"batch.length: expected int [{shape[0]}], got {lengths.dtype} {lengths.shape}")
    if shape[1] < self.min_samples:
      raise ValueError(f"batch.audio: expected at least {self.min_samples} samples (the feature encoder's "
                       f"receptive field and one mask span), got {shape[1]}")

  def tokens_per_example(self):
    return int(self.crop_samples or self.max_samples) // 320


TOKEN_KEYS = ("ids", "segments", "positions")


@dataclasses.dataclass(frozen=True)
class TokenRows(Modality):
  """Packed token rows {"ids", "segments", "positions": [seq_len] int32} (`sslax.data.packing`):
  already fixed-shape, so the transform only reads them out. Pretraining rows carry no labels
  (`labelled` False); labelled rows (SST-2, tagged sentences) come from `eval.probe_data`.

  Args:
    seq_len: L, tokens per row.
    vocab_size: ids must lie in [0, vocab_size).
    max_len: the longest row the model takes.
    pairs: rows of sentence pairs, with "type_ids" [seq_len] int32 (0 or 1) as well.
    targets: source rows with target rows (translation), "target_ids" and "target_segments".
  """

  seq_len: int
  vocab_size: int
  max_len: int
  pairs: bool = False
  targets: bool = False
  labelled = False

  @property
  def keys(self) -> tuple[str, ...]:
    if self.targets:
      return TOKEN_KEYS + ("target_ids", "target_segments")
    return TOKEN_KEYS + (("type_ids",) if self.pairs else ())

  def batch_spec(self, batch_size):
    return {k: jax.ShapeDtypeStruct((batch_size, self.seq_len), jnp.int32) for k in self.keys}

  def validate_batch(self, batch, num_devices):
    for key in self.keys:
      if key not in batch:
        raise ValueError(f"batch: expected an {key!r} entry, got keys {sorted(batch)}")
    ids = np.asarray(check_batch_entry(batch, "ids", rank=2, layout="[B, L]", num_devices=num_devices))
    for key in self.keys:
      x = np.asarray(batch[key])
      if x.shape != ids.shape or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"batch.{key}: expected int {ids.shape} like batch.ids, got {x.dtype} {x.shape}")
    if ids.shape[1] > self.max_len:
      raise ValueError(f"data.seq_len: expected at most model.max_len={self.max_len}, got rows of "
                       f"{ids.shape[1]} tokens")
    if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
      raise ValueError(f"batch.ids: expected token ids in [0, model.vocab_size={self.vocab_size}), got "
                       f"[{ids.min()}, {ids.max()}] (is the tokenizer larger than the model's vocabulary?)")
    if self.targets:
      t = np.asarray(batch["target_ids"])
      if t.size and (t.min() < 0 or t.max() >= self.vocab_size):
        raise ValueError(f"batch.target_ids: expected token ids in [0, model.vocab_size={self.vocab_size}), got "
                         f"[{t.min()}, {t.max()}]")
    elif self.pairs:
      types = np.asarray(batch["type_ids"])
      if types.size and (types.min() < 0 or types.max() > 1):
        raise ValueError(f"batch.type_ids: expected 0 (first text) or 1 (second), got [{types.min()}, {types.max()}]")

  def tokens_per_example(self):
    return self.seq_len


@dataclasses.dataclass(frozen=True)
class Captions(Modality):
  """Every caption of an image, tokenized (`sslax.data.captions.CaptionedImages`):
  {"captions": [K, L] int32 ids (pad after each caption), "caption_lengths": [K] int32, 0 for an
  empty slot}. Unlabelled (`labelled` False): probes read labelled images of their own.

  Args:
    caption_len: L, tokens per caption (specials included).
    max_captions: K, caption slots per image; every image has at least one caption.
    vocab_size: ids must lie in [0, vocab_size).
  """

  caption_len: int
  max_captions: int
  vocab_size: int
  keys = ("captions", "caption_lengths")
  labelled = False

  def batch_spec(self, batch_size):
    return {"captions": jax.ShapeDtypeStruct((batch_size, self.max_captions, self.caption_len), jnp.int32),
            "caption_lengths": jax.ShapeDtypeStruct((batch_size, self.max_captions), jnp.int32)}

  def validate_batch(self, batch, num_devices):
    ids = np.asarray(check_batch_entry(batch, "captions", rank=3, layout="[B, K, L]", num_devices=num_devices))
    expected = (self.max_captions, self.caption_len)
    if ids.shape[1:] != expected or not np.issubdtype(ids.dtype, np.integer):
      raise ValueError(f"batch.captions: expected int [B, {expected[0]}, {expected[1]}] (data.max_captions, "
                       f"data.caption_len), got {ids.dtype} {ids.shape}")
    if "caption_lengths" not in batch:
      raise ValueError(f"batch: expected a 'caption_lengths' entry, got keys {sorted(batch)}")
    lengths = np.asarray(batch["caption_lengths"])
    if lengths.shape != ids.shape[:2] or not np.issubdtype(lengths.dtype, np.integer):
      raise ValueError(f"batch.caption_lengths: expected int {ids.shape[:2]}, got {lengths.dtype} {lengths.shape}")
    if lengths.min() < 0 or lengths.max() > self.caption_len or np.any(lengths.max(axis=1) == 0):
      raise ValueError(f"batch.caption_lengths: expected lengths in [0, {self.caption_len}] with at least one "
                       f"caption per image, got [{lengths.min()}, {lengths.max()}]")
    if ids.min() < 0 or ids.max() >= self.vocab_size:
      raise ValueError(f"batch.captions: expected token ids in [0, text.vocab_size={self.vocab_size}), got "
                       f"[{ids.min()}, {ids.max()}] (is the tokenizer larger than the text tower's vocabulary?)")

  def tokens_per_example(self):
    return self.caption_len


@dataclasses.dataclass(frozen=True)
class Labels(Modality):
  """Integer targets read beside other inputs: one per example ({"label": [] int32}) or one per
  token / frame (`shape` = (L,), -1 where there is no target). Combine with the inputs they label."""

  key: str = "label"
  shape: tuple[int, ...] = ()
  num_classes: int = 0

  @property
  def keys(self):
    return (self.key,)

  def convert(self, record):
    return {self.key: self.extra(record, self.key)}

  def batch_spec(self, batch_size):
    return {self.key: jax.ShapeDtypeStruct((batch_size, *self.shape), jnp.int32)}

  def validate_batch(self, batch, num_devices):
    y = check_batch_entry(batch, self.key, rank=1 + len(self.shape), layout=f"[B{', L' * len(self.shape)}]",
                          num_devices=num_devices)
    if not np.issubdtype(np.asarray(y).dtype, np.integer):
      raise ValueError(f"batch.{self.key}: expected integer labels, got {np.asarray(y).dtype}")
    if self.num_classes and np.size(y) and np.max(y) >= self.num_classes:
      raise ValueError(f"batch.{self.key}: expected labels below {self.num_classes} classes, got {np.max(y)}")


@dataclasses.dataclass(frozen=True)
class Combined(Modality):
  """Several modalities read from one record (image + caption, audio + frame labels, rows +
  labels); each part converts its own keys, and their keys must not overlap."""

  parts: tuple[Modality, ...]

  def __post_init__(self):
    seen: dict[str, str] = {}
    for part in self.parts:
      for key in part.keys:
        if key in seen:
          raise ValueError(f"inputs: key {key!r} is read by both {seen[key]} and {type(part).__name__}")
        seen[key] = type(part).__name__

  @property
  def keys(self):
    return tuple(k for part in self.parts for k in part.keys)

  @property
  def labelled(self):
    return all(part.labelled for part in self.parts)

  def convert(self, record):
    out = {}
    for part in self.parts:
      out.update(part.convert(record))
    return out

  def extra(self, record, key):
    return self.parts[0].extra(record, key)

  def batch_spec(self, batch_size):
    out = {}
    for part in self.parts:
      out.update(part.batch_spec(batch_size))
    return out

  def validate_batch(self, batch, num_devices):
    for part in self.parts:
      part.validate_batch(batch, num_devices)

  def tokens_per_example(self):
    return max(part.tokens_per_example() for part in self.parts)
