"""The speech methods on filterbank frames (APC, Mockingjay, TERA): the filterbank against librosa, the
losses and alterations against NumPy, the weighted-layer probe; 1 vs 8 devices and a smoke run each,
HuBERT's included (its own tests: tests/test_hubert.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import runs, speech_smoke_config, write_wav_folder
from sslax.augment.filterbank import Filterbank, dct_matrix, mel_filters
from sslax.augment.frame_masks import alter_frames, time_mask
from sslax.losses.frames import future_frame_l1, masked_l1

SPEECH_METHODS = ("apc", "mockingjay", "tera", "hubert", "cpc", "wavenet", "temporal_distance", "triplet")


def _signals(rate=8000, lengths=(4000, 3217, 2400, 81), total=4100, seed=0):
  rng = np.random.default_rng(seed)
  audio = np.zeros((len(lengths), total), np.float32)
  for i, n in enumerate(lengths):
    t = np.arange(n) / rate
    audio[i, :n] = 0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t + 300 * t**2) + 0.02 * rng.normal(size=n)
  return audio, np.array(lengths)


def test_filterbank_matches_librosa():
  import librosa  # the reference (in the test extra)
  import scipy.fft

  rate = 8000
  np.testing.assert_allclose(mel_filters(rate, 256, 40), librosa.filters.mel(sr=rate, n_fft=256, n_mels=40),
                             atol=1e-7)
  np.testing.assert_allclose(dct_matrix(40, 13).T, scipy.fft.dct(np.eye(40), type=2, norm="ortho", axis=0)[:13],
                             atol=1e-6)
  audio, lengths = _signals(rate)
  kw = dict(n_fft=256, hop_length=80, win_length=200, n_mels=40)
  feats, valid = Filterbank(sample_rate=rate, cmvn=False)(jnp.asarray(audio), jnp.asarray(lengths))
  mfcc, _ = Filterbank(sample_rate=rate, cmvn=False, kind="mfcc")(jnp.asarray(audio), jnp.asarray(lengths))
  normed, _ = Filterbank(sample_rate=rate)(jnp.asarray(audio), jnp.asarray(lengths))
  for i, n in enumerate(lengths):
    ref = librosa.feature.melspectrogram(y=audio[i, :n], sr=rate, center=True, pad_mode="constant", **kw)
    ref = np.log(ref + 1e-6).T
    # valid frames: librosa's frames of the unpadded recording; padding frames are 0
    assert int(valid[i].sum()) == len(ref) == 1 + n // 80
    # float32 FFTs on any CPU: measured 7e-6 on log values of magnitude ~10
    np.testing.assert_allclose(np.asarray(feats[i, :len(ref)]), ref, atol=1e-4)
    assert not np.asarray(feats[i, len(ref):]).any()
    ref_mfcc = librosa.feature.mfcc(y=audio[i, :n], sr=rate, n_mfcc=13, **kw).T
    np.testing.assert_allclose(np.asarray(mfcc[i, :len(ref)]), ref_mfcc, atol=5e-4, rtol=1e-5)
    cmvn = (ref - ref.mean(0)) / np.sqrt(ref.var(0) + 1e-5)
    np.testing.assert_allclose(np.asarray(normed[i, :len(ref)]), cmvn, atol=1e-3)


def test_frame_losses_match_numpy():
  rng = np.random.default_rng(0)
  pred, target = rng.normal(size=(2, 3, 7, 5)).astype(np.float32)
  labels = rng.random((3, 7, 5)) < 0.3
  np.testing.assert_allclose(float(masked_l1(pred, target, labels)), np.abs(pred - target)[labels].mean(), rtol=1e-6)
  valid = np.arange(7)[None, :] < np.array([7, 5, 2])[:, None]
  n = 2
  ref = np.mean(np.concatenate([np.abs(pred[b, :-n] - target[b, n:])[valid[b, n:]] for b in range(3)]))
  np.testing.assert_allclose(float(future_frame_l1(pred, target, valid, n)), ref, rtol=1e-6)
  assert float(masked_l1(pred, target, np.zeros((3, 7), bool))) == 0.0
  with pytest.raises(ValueError, match="method.shift"):
    future_frame_l1(pred, target, valid, 7)


def test_alterations_match_the_reference_statistics():
  # s3prl `generate_masked_acoustic_model_data` per utterance of n frames: round(n * 0.15 / 7) spans
  # of 7 (starts without replacement, overlap allowed), dice 80 / 10 / 10; a band of randint(0, F * 0.2)
  # bins; noise with probability p
  t, f, b = 200, 40, 400
  frames = np.array([200, 140, 60, 12, 7] * (b // 5))
  valid = np.arange(t)[None, :] < frames[:, None]
  feats = jax.random.normal(jax.random.PRNGKey(1), (b, t, f)) + 5.0  # no frame is 0 before masking
  out, labels, info = jax.jit(lambda k: alter_frames(k, feats, jnp.asarray(valid), time_proportion=0.15, span=7,
                                                     freq_fraction=0.2, noise_prob=0.15))(jax.random.PRNGKey(0))
  out, labels, chosen, bins = map(np.asarray, (out, labels, info["time"], info["freq"]))
  for n in (200, 140, 60):
    rows = frames == n
    spans = round(n * 0.15 / 7)
    covered = chosen[rows].sum(1)
    # overlapping spans cover at most spans * 7 frames, and a span stays inside the valid frames
    assert covered.max() <= spans * 7 and covered.mean() > 0.8 * spans * 7
  assert not (chosen & ~valid).any() and all(r >= 7 for row in chosen for r in runs(row))
  assert not chosen[frames == 7].any()  # round(7 * 0.15 / 7) = 0 spans
  # the dice: chosen frames zeroed in ~80% of the utterances (before noise: compare unnoised rows)
  clean = ~np.asarray(info["noised"])
  has = chosen.any(1) & clean & ~bins.any(1)
  zeroed = np.array([np.all(out[i][chosen[i]] == 0) for i in np.where(has)[0]])
  kept = np.array([np.allclose(out[i][chosen[i]], np.asarray(feats)[i][chosen[i]]) for i in np.where(has)[0]])
  assert 0.7 < zeroed.mean() < 0.9 and 0.03 < kept.mean() < 0.2, (zeroed.mean(), kept.mean())
  # frequency band width ~ U{0..8}: mean 4; its bins are labelled on the valid frames only
  assert abs(bins.sum(1).mean() - 4.0) < 0.5 and bins.sum(1).max() <= 8
  np.testing.assert_array_equal(labels, (chosen[..., None] | (bins[:, None, :] & valid[..., None])))
  assert abs(np.asarray(info["noised"]).mean() - 0.15) < 0.05
  assert not out[~valid].any()
  mask = np.asarray(time_mask(jax.random.PRNGKey(2), jnp.asarray(frames), t, proportion=0.15, span=7))
  assert not (mask & ~valid).any()


def test_weighted_layer_probe_finds_the_informative_layer():
  from sslax.eval.linear_probe import linear_probe

  rng = np.random.default_rng(0)
  y = rng.integers(0, 3, 300)
  noise = rng.normal(size=(300, 3, 8)).astype(np.float32)
  noise[:, 2, :3] += 3.0 * np.eye(3)[y]  # only layer 2 carries the label
  out = linear_probe(noise[:200], y[:200], noise[200:], y[200:])
  assert out["top1"] > 0.9 and np.argmax(out["layer_weights"]) == 2, out
  assert abs(sum(out["layer_weights"]) - 1.0) < 1e-5


def test_segment_pairs_are_as_far_apart_as_their_label_says():
  from sslax.methods.temporal_distance import segment_pairs

  b, t, seg, edges = 600, 60, 5, (0, 2, 6, 20)
  frames = np.array([60, 40, 14] * (b // 3))
  valid = np.arange(t)[None, :] < frames[:, None]
  # frame i of every recording holds the value i: a segment's first value is its start
  feats = np.broadcast_to(np.arange(t, dtype=np.float32)[None, :, None], (b, t, 2))
  first, second, labels, usable = map(np.asarray, segment_pairs(jax.random.key(0), jnp.asarray(feats),
                                                                jnp.asarray(valid), segment=seg, gap_edges=edges))
  order, bucket = labels % 2, labels // 2
  early, late = np.where(order[:, None, None] == 1, second, first), np.where(order[:, None, None] == 1, first, second)
  gap = late[:, 0, 0] - early[:, -1, 0] - 1
  for c in range(3):
    rows = usable & (bucket == c)
    assert rows.any() and np.all((gap[rows] >= edges[c]) & (gap[rows] < edges[c + 1]))
  # both segments are contiguous runs inside the valid frames; the ones that cannot fit are unusable
  assert np.all(np.diff(first[usable, :, 0], axis=1) == 1) and np.all(late[usable, -1, 0] < frames[usable])
  assert np.all(usable[frames == 60]) and not usable[(frames == 14) & (bucket == 2)].any()
  assert 0.4 < order.mean() < 0.6 and np.bincount(bucket, minlength=3).min() > b / 3 * 0.7


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("speech")
  return write_wav_folder(root / "wav"), root / "tfds"


@pytest.mark.parametrize("name", (*SPEECH_METHODS, "wav2vec2"))
def test_same_loss_and_grads_on_1_and_8_devices(name, wav_folder):
  from sslax.data import get_source, to_global
  from sslax.methods import make_method
  from sslax.optim import make_optimizer
  from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding

  config = speech_smoke_config(name, *wav_folder)
  method = make_method(config)
  source = get_source(config.data, "train")
  fn = method.inputs.transform()
  records = [fn(source[i]) for i in range(8)]
  batch = {k: np.stack([r[k] for r in records]) for k in records[0]}
  tx = make_optimizer(config.optim, 10, 8)
  results = []
  for n in (1, 8):
    mesh = make_mesh({"data": n})
    state = jax.device_put(create_train_state(method, tx, 0), state_sharding(mesh))
    state, metrics = make_train_step(method, tx, mesh)(state, to_global(batch, mesh))
    results.append((jax.device_get(metrics), jax.device_get(state.params)))
  (m1, p1), (m8, p8) = results
  losses = [k for k in m1 if k.endswith("loss") or k.startswith("accuracy") or k == "prob_perplexity"]
  for k in losses:
    np.testing.assert_allclose(m1[k], m8[k], rtol=1e-5, atol=1e-6, err_msg=k)
  assert np.isfinite(m1["loss"]) and m1["loss"] > 0
  assert 0 < m1.get("mask_fraction", 0.5) < 1
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_bad_config_fails_before_compiling(wav_folder):
  from sslax.methods import make_method

  with pytest.raises(ValueError, match=r"fbank.kind: expected one of \['log_mel', 'mfcc'\], got 'mel'"):
    make_method(speech_smoke_config("apc", *wav_folder, **{"fbank.kind": "mel"}))
  with pytest.raises(ValueError, match=r"method.shift: expected fewer than the 21 frames"):
    make_method(speech_smoke_config("apc", *wav_folder, **{"method.shift": 30}))
  with pytest.raises(ValueError, match=r"fbank.win_length: expected an integer in \[1, fbank.n_fft=256\]"):
    make_method(speech_smoke_config("mockingjay", *wav_folder, **{"fbank.win_length": 400}))
  with pytest.raises(ValueError, match=r"method.mask_frequency: expected a number in \(0, 1\)"):
    make_method(speech_smoke_config("tera", *wav_folder, **{"method.mask_frequency": 0.0}))
  with pytest.raises(ValueError, match=r"method.positives: expected one of \['speaker', 'crops'\], got 'label'"):
    make_method(speech_smoke_config("triplet", *wav_folder, **{"method.positives": "label"}))


@pytest.mark.parametrize("name", SPEECH_METHODS)
def test_smoke_pretrain_then_probe(name, wav_folder, tmp_path):
  from sslax.train.loop import train

  config = speech_smoke_config(name, *wav_folder, **{"eval.linear_probe": True})
  report = train(config, str(tmp_path / "run"), progress=False).report
  assert report["steps"] == 3
  # each generated digit is a tone sweep of its own pitch: far above chance (1/3) from any working
  # encoder's pooled frames; measured 0.77 (APC, 3 steps) to 1.0. WaveNet's sample-level features,
  # mean-pooled, hardly tell the pitches apart in 3 steps (0.40-0.50), but each speaker's loudness
  # (chance 1/2): measured 1.0
  prefix, floor = ("speaker/", 0.9) if name == "wavenet" else ("", 0.6)
  for key in ("linear_top1", "layer/weighted_linear_top1", "layer/best_linear_top1"):
    assert report[prefix + key] > floor, (key, report)
  weights = [v for k, v in report.items() if k.startswith("layer/weight/")]
  # input (or CPC's encoder) and the smoke network's one layer (WaveNet's: 6 blocks)
  assert len(weights) == (7 if name == "wavenet" else 2) and abs(sum(weights) - 1.0) < 1e-4
  assert {"speaker/linear_top1", "layer/best_knn_top1", "speaker/layer/weighted_knn_top1"} <= set(report)
  if name == "triplet":  # speaker verification of the pooled encoder and of the trained embedding:
    # two generated speakers (nearest-neighbour chance ~0.5): the pooled encoder measured 0.83 after
    # 3 steps; the 3-step projector's embedding is barely trained (0.57), so only its range is checked
    assert report["speaker/recall@1"] > 0.7, report
    assert 0 < report["speaker/embedding_recall@1"] <= 1
    assert 0 <= report["speaker/embedding_eer"] < 0.5 and 0 <= report["speaker/eer"] < 0.5
