"""Log-mel filterbanks and MFCCs computed from waveforms on device, inside the jitted step.

The frame-level speech methods (APC, Mockingjay, TERA) read these features;
the waveform methods (wav2vec 2.0) keep their conv encoder. The conventions
are librosa's (`librosa.feature.melspectrogram` / `mfcc`, centred frames with
zero padding, a periodic Hann window of `win_length` centred in `n_fft`, the
Slaney mel scale and area normalization), so a recording's valid frames equal
librosa's on the unpadded signal (`tests/test_speech_frames.py` holds them to
the stated tolerance). JAX has no mel filterbank and librosa is NumPy, not a
core dependency: the filter and DCT matrices are built here with NumPy at
trace time (about 30 lines, tested against librosa's).

Padded batches: audio [B, L] zero-padded after `lengths` [B]; a recording of n
samples has `1 + n // hop_length` frames, later frames are padding (`valid`).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def hz_to_mel(f):
  """Slaney's mel scale (librosa `htk=False`): linear below 1 kHz, logarithmic above."""
  f = np.asarray(f, np.float64)
  mel = f / (200.0 / 3)
  log_step = np.log(6.4) / 27.0
  return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / log_step, mel)


def mel_to_hz(m):
  m = np.asarray(m, np.float64)
  log_step = np.log(6.4) / 27.0
  return np.where(m >= 15.0, 1000.0 * np.exp(log_step * (m - 15.0)), m * (200.0 / 3))


def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
  """[n_mels, 1 + n_fft // 2] triangular filters, area-normalized (librosa `norm="slaney"`)."""
  fmax = sample_rate / 2 if fmax is None else fmax
  freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
  edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
  widths = np.diff(edges)
  ramps = edges[:, None] - freqs[None, :]
  lower = -ramps[:-2] / widths[:-1, None]
  upper = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(lower, upper))
  return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_in, n_out] orthonormal DCT-II (scipy `dct(type=2, norm="ortho")`, librosa's MFCC)."""
  n = np.arange(n_in)[:, None]
  k = np.arange(n_out)[None, :]
  d = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
  d[:, 0] /= np.sqrt(2.0)
  return d.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Filterbank:
  """The front end's settings (config `fbank`); times in samples at `sample_rate`.

  kind: "log_mel" (natural log of mel power + `eps`) or "mfcc" (`n_mfcc` DCT
  coefficients of the power in dB, clipped `top_db` below each recording's
  peak, as librosa). cmvn: zero mean, unit variance per utterance over its
  valid frames, per feature.
  """
  sample_rate: int
  n_fft: int = 256
  win_length: int = 200
  hop_length: int = 80
  n_mels: int = 40
  fmin: float = 0.0
  fmax: float | None = None
  kind: str = "log_mel"
  n_mfcc: int = 13
  top_db: float = 80.0
  eps: float = 1e-6
  cmvn: bool = True

  @property
  def num_features(self) -> int:
    return self.n_mfcc if self.kind == "mfcc" else self.n_mels

  def num_frames(self, lengths):
    """Frames of recordings of `lengths` samples (centred framing): 1 + n // hop."""
    return 1 + lengths // self.hop_length

  def __call__(self, audio: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
    """audio [B, L] float, lengths [B] -> (features [B, T, F] float32, valid [B, T] bool), T = 1 + L // hop.
    Padding frames are 0."""
    frames = self.num_frames(lengths)
    t = 1 + audio.shape[1] // self.hop_length
    valid = jnp.arange(t)[None, :] < frames[:, None]
    power = stft_power(audio.astype(jnp.float32), lengths, n_fft=self.n_fft, win_length=self.win_length,
                       hop_length=self.hop_length)
    mel = power @ jnp.asarray(mel_filters(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax).T)
    if self.kind == "mfcc":
      db = 10.0 * jnp.log10(jnp.maximum(mel, 1e-10))
      peak = jnp.max(jnp.where(valid[..., None], db, -jnp.inf), axis=(1, 2), keepdims=True)
      db = jnp.maximum(db, peak - self.top_db)
      feats = db @ jnp.asarray(dct_matrix(self.n_mels, self.n_mfcc))
    else:
      feats = jnp.log(mel + self.eps)
    if self.cmvn:
      feats = cmvn(feats, valid)
    return jnp.where(valid[..., None], feats, 0.0), valid


def stft_power(audio: jax.Array, lengths: jax.Array, *, n_fft: int, win_length: int, hop_length: int) -> jax.Array:
  """|STFT|^2 [B, T, 1 + n_fft // 2] of centred frames (n_fft // 2 zeros each side, as librosa's
  `center=True, pad_mode="constant"`); samples at or after `lengths` count as 0."""
  b, total = audio.shape
  audio = jnp.where(jnp.arange(total)[None, :] < lengths[:, None], audio, 0.0)
  padded = jnp.pad(audio, ((0, 0), (n_fft // 2, n_fft // 2)))
  t = 1 + total // hop_length
  idx = np.arange(t)[:, None] * hop_length + np.arange(n_fft)[None, :]
  window = np.zeros(n_fft, np.float32)
  start = (n_fft - win_length) // 2
  # the periodic Hann window (scipy `get_window("hann", fftbins=True)`), centred in n_fft
  window[start:start + win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
  frames = padded[:, idx] * jnp.asarray(window)
  spec = jnp.fft.rfft(frames, n=n_fft, axis=-1)
  return jnp.real(spec) ** 2 + jnp.imag(spec) ** 2


def cmvn(x: jax.Array, valid: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Per-utterance mean and variance normalization over valid frames: x [B, T, F], valid [B, T]."""
  w = valid[..., None].astype(x.dtype)
  n = jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)
  mean = jnp.sum(x * w, axis=1, keepdims=True) / n
  var = jnp.sum(jnp.square(x - mean) * w, axis=1, keepdims=True) / n
  return (x - mean) * jax.lax.rsqrt(var + eps)


def make_filterbank(config) -> Filterbank:
  """The `fbank` section of a config (its `sample_rate` from `data.sample_rate`)."""
  f = config.fbank
  return Filterbank(sample_rate=int(config.data.sample_rate), n_fft=int(f.n_fft), win_length=int(f.win_length),
                    hop_length=int(f.hop_length), n_mels=int(f.n_mels), fmin=float(f.get("fmin", 0.0)),
                    fmax=f.get("fmax"), kind=str(f.get("kind", "log_mel")), n_mfcc=int(f.get("n_mfcc", 13)),
                    top_db=float(f.get("top_db", 80.0)), cmvn=bool(f.get("cmvn", True)))


def deltas(x: jax.Array, win_length: int = 5) -> jax.Array:
  """Time derivatives of x [B, T, F] by regression over +-(win_length // 2) frames, edges
  replicated (torchaudio's `compute_deltas`, which fairseq's HuBERT MFCC dump uses):
  d_t = sum_n n (x_{t+n} - x_{t-n}) / (2 sum_n n^2)."""
  n = win_length // 2
  padded = jnp.pad(x, ((0, 0), (n, n), (0, 0)), mode="edge")
  t = x.shape[1]
  num = sum(i * (padded[:, n + i:n + i + t] - padded[:, n - i:n - i + t]) for i in range(1, n + 1))
  return num / (2 * sum(i * i for i in range(1, n + 1)))


def mfcc_with_deltas(filterbank: Filterbank, audio: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[B, T, 3 * n_mfcc] MFCCs with their deltas and delta-deltas (HuBERT's first-iteration
  features: 39 numbers a frame), and valid [B, T]."""
  m, valid = filterbank(audio, lengths)
  d = deltas(m)
  return jnp.where(valid[..., None], jnp.concatenate([m, d, deltas(d)], axis=-1), 0.0), valid
