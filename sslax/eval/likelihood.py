"""What an image likelihood model's bits/dim is measured against, and its samples.

- `MarginalHistogram`: the per-sub-pixel marginal of the training set (one 256-bin histogram for
  every (row, column, channel), add-`alpha` smoothed): the best model that ignores every other
  pixel, beside uniform 8 bits/dim. No library computes this baseline; it is a counting pass.
- `PixelBaselines`: the evaluator that reports both on the run's held-out split, so the model's
  `heldout/bits_per_dim` sits beside baselines computed on the same pixels.
- `Samples`: draws `method.sample` into `<workdir>/samples.png`.
- `MuLawUnigram` and `AudioSamples`: the same two for a waveform model (WaveNet): the training
  split's mu-law class histogram scored on the held-out samples, and `<workdir>/samples.wav`.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sslax.data.pipeline import eval_batches, from_full_batch
from sslax.eval.reconstruction import reconstruction_grid
from sslax.models.functional import merge_model
from sslax.paths import join


class MarginalHistogram:
  """Counts of each value of each sub-pixel over images [N, H, W, C] of integers in [0, levels).

  Examples:
    >>> import numpy as np
    >>> h = MarginalHistogram(levels=4, alpha=0.0)
    >>> h.add(np.array([[[[0]]], [[[0]]], [[[1]]], [[[3]]]]))  # four 1x1x1 images
    >>> h.bits_per_dim(np.array([[[[0]]], [[[3]]]])).tolist()  # -log2(2/4), -log2(1/4)
    [1.0, 2.0]
  """

  def __init__(self, levels: int = 256, alpha: float = 1.0):
    self.levels, self.alpha = levels, float(alpha)
    self.counts: np.ndarray | None = None

  def add(self, images: np.ndarray) -> None:
    images = np.asarray(images)
    if images.ndim != 4:
      raise ValueError(f"images: expected [N, H, W, C], got shape {images.shape}")
    flat = images.reshape(len(images), -1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= self.levels):
      raise ValueError(f"images: expected integers in [0, {self.levels}), got [{flat.min()}, {flat.max()}]")
    dims = flat.shape[1]
    if self.counts is None:
      self.counts = np.zeros((dims, self.levels), np.int64)
    elif self.counts.shape[0] != dims:
      raise ValueError(f"images: expected {self.counts.shape[0]} sub-pixels per image, got {dims}")
    index = (np.arange(dims) * self.levels)[None, :] + flat
    self.counts += np.bincount(index.ravel(), minlength=dims * self.levels).reshape(dims, self.levels)

  def bits_per_dim(self, images: np.ndarray) -> np.ndarray:
    """[N] the mean over each image's sub-pixels of -log2 of the smoothed marginal."""
    if self.counts is None:
      raise ValueError("MarginalHistogram: no training images added")
    flat = np.asarray(images).reshape(len(images), -1).astype(np.int64)
    counts = self.counts + self.alpha
    with np.errstate(divide="ignore"):  # alpha 0: an unseen value costs infinite bits
      log_p = np.log2(counts) - np.log2(counts.sum(axis=1, keepdims=True))
    return -np.mean(log_p[np.arange(flat.shape[1])[None, :], flat], axis=1)


@dataclasses.dataclass(frozen=True)
class PixelBaselines:
  """Evaluator: bits/dim of the held-out split under uniform 8-bit pixels and under the training
  split's per-sub-pixel marginal (`MarginalHistogram`, add-one smoothed):
  {"heldout/uniform_bits_per_dim": 8.0, "heldout/marginal_bits_per_dim": ...}."""
  alpha: float = 1.0
  batch_size: int = 1000
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.heldout is None or run.data.train is None:
      return {}
    transform = run.method.inputs.transform()
    hist = MarginalHistogram(alpha=self.alpha)
    for batch in eval_batches(run.data.train, batch_size=self.batch_size, transform=transform):
      hist.add(batch["image"])
    total, count = 0.0, 0
    for batch in eval_batches(run.data.heldout, batch_size=self.batch_size, transform=transform):
      bits = hist.bits_per_dim(batch["image"])
      total, count = total + float(bits.sum()), count + len(bits)
    return {"heldout/uniform_bits_per_dim": math.log2(256), "heldout/marginal_bits_per_dim": total / max(count, 1)}


@dataclasses.dataclass(frozen=True)
class Samples:
  """Evaluator: `method.sample(model, key, canvas) -> [n, H, W, C] integers in [0, 255]` for
  `num_images` images (rounded up to a multiple of the devices, the canvas sharded over them),
  of the held-out images' shape, drawn from `config.seed` as `<workdir>/samples.png`, `per_row` to a
  row. Returns {"samples/num_images": n}; nothing without a workdir or a held-out split."""
  num_images: int = 16
  per_row: int = 8
  filename: str = "samples.png"
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.workdir is None or run.data.heldout is None:
      return {}
    method, state, mesh, config = run.method, run.state, run.mesh, run.config
    n_dev = mesh.devices.size
    n = -(-self.num_images // n_dev) * n_dev
    record = next(eval_batches(run.data.heldout, batch_size=1, transform=method.inputs.transform()))["image"]
    canvas = from_full_batch(np.zeros((n, *record.shape[1:]), np.int32), mesh)  # a held-out image's shape
    replicated = NamedSharding(mesh, PartitionSpec())

    def fn(params, batch_stats, canvas, key, graphdef):
      return method.sample(merge_model(graphdef, params, batch_stats), key, canvas)

    key = jax.device_put(jax.random.PRNGKey(config.seed), replicated)
    images = np.asarray(jax.device_get(jax.jit(fn, static_argnums=(4,), out_shardings=replicated)(
        state.params, state.batch_stats, canvas, key, state.graphdef)))[:self.num_images]
    rows = {f"{i + 1}-{min(i + self.per_row, len(images))}": images[i:i + self.per_row] / 255.0
            for i in range(0, len(images), self.per_row)}
    if len(rows) > 1 and len(rows[list(rows)[-1]]) < self.per_row:  # the grid is rectangular
      rows.popitem()
    reconstruction_grid(rows, join(run.workdir, self.filename),
                        title=f"{method.name}: samples, step {int(jax.device_get(state.step))}")
    return {"samples/num_images": float(sum(len(r) for r in rows.values()))}


@dataclasses.dataclass(frozen=True)
class MuLawUnigram:
  """Evaluator: bits per sample of the held-out split's valid samples after the first (the targets
  `causal_lm_loss` scores) under the training split's mu-law class histogram, add-`alpha`
  smoothed: {"heldout/unigram_bits_per_sample": ...}; `log2(classes)` is the uniform model's."""
  alpha: float = 1.0
  batch_size: int = 256
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.heldout is None or run.data.train is None:
      return {}
    method = run.method
    classes = int(run.config.model.classes)
    transform = method.inputs.transform()

    def ids(batch, start):
      x, valid = jax.device_get(method.ids(batch["audio"], batch["length"]))
      return np.asarray(x)[:, start:][np.asarray(valid)[:, start:]]

    counts = np.full(classes, self.alpha)
    for batch in eval_batches(run.data.train, batch_size=self.batch_size, transform=transform):
      counts += np.bincount(ids(batch, 0), minlength=classes)
    log_p = np.log2(counts) - np.log2(counts.sum())
    total, count = 0.0, 0
    for batch in eval_batches(run.data.heldout, batch_size=self.batch_size, transform=transform):
      x = ids(batch, 1)
      total, count = total - float(log_p[x].sum()), count + len(x)
    return {"heldout/unigram_bits_per_sample": total / max(count, 1),
            "heldout/uniform_bits_per_sample": math.log2(classes)}


@dataclasses.dataclass(frozen=True)
class AudioSamples:
  """Evaluator: `method.sample(model, key, n) -> [n]` mu-law ids for `seconds` of audio at
  `data.sample_rate`, drawn from `config.seed` in one compiled program, decoded and written as
  16-bit PCM `<workdir>/samples.wav`. Returns {"samples/seconds": seconds}."""
  seconds: float = 2.0
  filename: str = "samples.wav"
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    import io

    import scipy.io.wavfile

    from etils import epath

    from sslax.augment.audio import mu_law_decode

    if run.workdir is None:
      return {}
    method, state, config = run.method, run.state, run.config
    rate = int(config.data.sample_rate)
    n = int(self.seconds * rate)

    def fn(params, batch_stats, key, graphdef):
      return mu_law_decode(method.sample(merge_model(graphdef, params, batch_stats), key, n),
                           int(config.model.classes))

    wave = np.asarray(jax.device_get(jax.jit(fn, static_argnums=(3,))(
        state.params, state.batch_stats, jax.random.PRNGKey(config.seed), state.graphdef)))
    buf = io.BytesIO()
    scipy.io.wavfile.write(buf, rate, (np.clip(wave, -1, 1) * 32767).astype(np.int16))
    epath.Path(join(run.workdir, self.filename)).write_bytes(buf.getvalue())
    return {"samples/seconds": float(self.seconds)}
