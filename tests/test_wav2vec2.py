"""wav2vec 2.0: masks, distractors, quantizer, losses against NumPy, 1 vs 8 devices, audio data."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import bad_wav_files, runs, wav2vec2_smoke_config, write_wav_folder
from sslax.augment.audio import normalize, random_crop, sample_negatives, span_mask
from sslax.losses.wav2vec2 import (codebook_diversity_loss, codebook_perplexity, feature_penalty,
                                   gumbel_temperature, wav2vec2_contrastive_loss)
from sslax.models.wav2vec2 import GumbelQuantizer, Wav2Vec2, conv_output_lengths


def _hf_mask_numpy(rng, lengths, num_frames, mask_prob, mask_length, min_masks=0):
  """Hugging Face's `_compute_mask_indices` semantics, written out in NumPy (epsilon per utterance)."""
  out = np.zeros((len(lengths), num_frames), bool)
  for b, n in enumerate(lengths):
    spans = int(mask_prob * n / mask_length + rng.random())
    spans = min(max(spans, min_masks), max(n - mask_length + 1, 0))
    starts = rng.choice(max(n - mask_length + 1, 0), spans, replace=False)
    for s in starts:
      out[b, s:s + mask_length] = True
  return out


def test_span_mask_statistics_match_the_reference_and_spare_padding():
  lengths = np.array([200, 120, 60, 11, 5] * 40)
  t, p, m = 200, 0.65, 10
  ours = np.concatenate([np.asarray(span_mask(jax.random.PRNGKey(i), jnp.asarray(lengths), t, mask_prob=p,
                                              mask_length=m)) for i in range(25)])
  rng = np.random.default_rng(0)
  ref = np.concatenate([_hf_mask_numpy(rng, lengths, t, p, m) for _ in range(25)])
  all_lengths = np.tile(lengths, 25)
  for n in (200, 120, 60):
    rows = all_lengths == n
    ours_frac, ref_frac = ours[rows].sum(1).mean() / n, ref[rows].sum(1).mean() / n
    assert abs(ours_frac - ref_frac) < 0.03, (n, ours_frac, ref_frac)
    assert 0.4 < ours_frac < 0.6  # about half the frames at p=0.65, M=10
  # padding never masked; every masked run is made of whole spans (>= M frames)
  assert not np.any(ours & (np.arange(t)[None, :] >= all_lengths[:, None]))
  assert all(r >= m for row in ours for r in runs(row))
  # an utterance shorter than one span cannot be masked
  assert not ours[all_lengths == 5].any()
  # the same key gives the same mask, on any device count
  a = span_mask(jax.random.PRNGKey(3), jnp.asarray(lengths), t, mask_prob=p, mask_length=m)
  b = span_mask(jax.random.PRNGKey(3), jnp.asarray(lengths), t, mask_prob=p, mask_length=m)
  np.testing.assert_array_equal(a, b)


def test_span_mask_min_masks():
  mask = span_mask(jax.random.PRNGKey(0), jnp.array([30, 30]), 30, mask_prob=0.01, mask_length=5, min_masks=2)
  assert np.all(np.asarray(mask).sum(1) >= 5)


def test_negatives_are_other_masked_frames_of_the_same_utterance():
  key = jax.random.PRNGKey(0)
  mask = np.array(span_mask(key, jnp.array([50, 40, 30, 12]), 50, mask_prob=0.65, mask_length=5))
  mask[3] = False
  mask[3, 4] = True  # one masked frame only: no negatives possible
  idx, has = sample_negatives(jax.random.PRNGKey(1), jnp.asarray(mask), 20)
  idx, has = np.asarray(idx), np.asarray(has)
  np.testing.assert_array_equal(has, mask.sum(1) > 1)
  for b in range(3):
    for t in np.flatnonzero(mask[b]):
      assert np.all(mask[b, idx[b, t]]), "a distractor is not a masked frame"
      assert not np.any(idx[b, t] == t), "a distractor is the positive"
    # the draws cover the other masked frames roughly uniformly
    t0 = np.flatnonzero(mask[b])[0]
    assert len(set(idx[b, t0])) > 1


def _cosine(a, b):
  return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-8)


def test_contrastive_loss_matches_numpy_and_masks_negatives_equal_to_the_positive():
  rng = np.random.default_rng(0)
  b, t, f, k, kappa = 2, 6, 4, 3, 0.1
  c, q = rng.normal(size=(b, t, f)).astype(np.float32), rng.normal(size=(b, t, f)).astype(np.float32)
  q[0, 2] = q[0, 1]  # frame 2's quantized vector equals frame 1's
  idx = rng.integers(0, t, size=(b, t, k))
  idx[0, 1, 0] = 2  # so this distractor of frame 1 equals its positive: masked out
  w = (rng.random((b, t)) > 0.3).astype(np.float32)
  w[0, 1] = 1
  loss, aux = wav2vec2_contrastive_loss(jnp.asarray(c), jnp.asarray(q), jnp.asarray(idx), jnp.asarray(w),
                                        temperature=kappa)
  total, correct = 0.0, 0.0
  for i in range(b):
    for j in range(t):
      cands = np.concatenate([q[i, j][None], q[i, idx[i, j]]])
      logits = _cosine(c[i, j][None], cands) / kappa
      logits[1:][np.all(q[i, idx[i, j]] == q[i, j], axis=-1)] = -np.inf
      nll = -(logits[0] - np.log(np.exp(logits - logits.max()).sum()) - logits.max())
      total += w[i, j] * nll
      correct += w[i, j] * (np.argmax(logits) == 0)
  np.testing.assert_allclose(float(loss), total / w.sum(), rtol=1e-5)
  np.testing.assert_allclose(float(aux["accuracy"]), correct / w.sum(), rtol=1e-6)


def test_contrastive_loss_of_an_all_zero_frame_has_finite_gradients():
  rng = np.random.default_rng(1)
  c, q = rng.normal(size=(1, 5, 4)).astype(np.float32), rng.normal(size=(1, 5, 4)).astype(np.float32)
  c[0, 1] = 0.0  # a context vector of zeros (e.g. a dead frame): cosine 0 to every candidate
  q[0, 3] = 0.0  # and a quantized target of zeros
  idx = np.array([[[2, 3], [3, 4], [0, 3], [1, 4], [0, 2]]])
  w = np.ones((1, 5), np.float32)
  f = lambda c, q: wav2vec2_contrastive_loss(c, q, jnp.asarray(idx), jnp.asarray(w), temperature=0.1)[0]
  loss, (dc, dq) = jax.value_and_grad(f, (0, 1))(jnp.asarray(c), jnp.asarray(q))
  assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(dc))) and np.all(np.isfinite(np.asarray(dq)))
  # the zero frame's logits are all 0: its term is log(1 + K), uniform over its 3 candidates
  frame = wav2vec2_contrastive_loss(jnp.asarray(c), jnp.asarray(q), jnp.asarray(idx),
                                    jnp.asarray(np.eye(5, dtype=np.float32)[1][None]), temperature=0.1)[0]
  np.testing.assert_allclose(float(frame), np.log(3.0), rtol=1e-6)


def test_diversity_loss_hand_computed():
  g, v = 2, 4
  uniform = jnp.full((10, g, v), 1.0 / v)
  ppl = codebook_perplexity(uniform, jnp.ones(10))
  np.testing.assert_allclose(float(ppl), g * v, rtol=1e-5)
  np.testing.assert_allclose(float(codebook_diversity_loss(ppl, g, v)), 0.0, atol=1e-5)
  collapsed = jax.nn.one_hot(jnp.zeros((10, g), jnp.int32), v)
  ppl = codebook_perplexity(collapsed, jnp.ones(10))
  np.testing.assert_allclose(float(ppl), g, rtol=1e-5)
  np.testing.assert_allclose(float(codebook_diversity_loss(ppl, g, v)), (g * v - g) / (g * v), rtol=1e-5)
  # a hand example: group 0 averages to (0.5, 0.5, 0, 0) -> perplexity 2; group 1 uniform -> 4
  probs = np.zeros((2, g, v), np.float32)
  probs[0, 0, 0] = probs[1, 0, 1] = 1.0
  probs[:, 1] = 0.25
  ppl = codebook_perplexity(jnp.asarray(probs), jnp.ones(2))
  np.testing.assert_allclose(float(ppl), 2 + 4, rtol=1e-5)
  np.testing.assert_allclose(float(codebook_diversity_loss(ppl, g, v)), (8 - 6) / 8, rtol=1e-5)
  # weights leave frames out of the average
  ppl = codebook_perplexity(jnp.asarray(probs), jnp.array([1.0, 0.0]))
  np.testing.assert_allclose(float(ppl), 1 + 4, rtol=1e-5)


def test_feature_penalty_and_temperature_schedule():
  z = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
  w = np.array([[1, 1, 0]], np.float32)
  np.testing.assert_allclose(float(feature_penalty(jnp.asarray(z), jnp.asarray(w))), np.mean(z[0, :2] ** 2))
  np.testing.assert_allclose(float(gumbel_temperature(jnp.asarray(0))), 2.0)
  np.testing.assert_allclose(float(gumbel_temperature(jnp.asarray(100_000))), 2.0 * 0.999995**100_000, rtol=1e-5)
  np.testing.assert_allclose(float(gumbel_temperature(jnp.asarray(10_000_000))), 0.5)


def test_quantizer_hard_forward_soft_gradient():
  quantizer = GumbelQuantizer(6, 2, 5, 8, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 7, 6))
  q, probs, codes = quantizer(x, tau=2.0, key=jax.random.PRNGKey(2))
  assert q.shape == (2, 7, 8) and probs.shape == (2, 7, 2, 5) and codes.shape == (2, 7, 2)
  codebook = np.asarray(quantizer.codevars[...])  # [G, V, 4]
  halves = np.asarray(q).reshape(2, 7, 2, 4)
  for g in range(2):  # every output group is exactly one codeword (hard one-hot forward)
    dist = np.abs(halves[:, :, g, None, :] - codebook[g][None, None]).max(-1)
    assert np.all(dist.min(-1) < 1e-6)
  graphdef, params = nnx.split(quantizer)

  def loss(params):
    out, _, _ = nnx.merge(graphdef, params)(x, tau=2.0, key=jax.random.PRNGKey(2))
    return jnp.sum(out * jnp.arange(8.0))

  grads = jax.grad(loss)(params)
  assert float(jnp.abs(grads["weight_proj"]["kernel"][...]).sum()) > 0  # gradient through the soft probs
  q_eval, _, codes_eval = quantizer(x)
  np.testing.assert_array_equal(codes_eval, jnp.argmax(probs, -1))


def test_model_shapes_and_frame_lengths():
  conv = ((16, 10, 5), (16, 3, 2), (16, 2, 2))
  model = Wav2Vec2(conv_layers=conv, dim=16, depth=1, num_heads=2, mlp_dim=32, final_dim=8, latent_groups=2,
                   latent_vars=4, pos_conv_kernel=4, pos_conv_groups=2, rngs=nnx.Rngs(0))
  audio = jax.random.normal(jax.random.PRNGKey(0), (3, 800))
  lengths = jnp.array([800, 500, 100])
  frames = conv_output_lengths(800, conv)
  np.testing.assert_array_equal(model.frame_lengths(lengths), [39, 24, 4])
  mask = jnp.zeros((3, frames), bool).at[:, 2:6].set(True)
  # jitted as in training (run eagerly, every op would compile on its own, per shape)
  out = nnx.jit(lambda m, *a: m(*a, tau=1.0, key=jax.random.PRNGKey(1)))(model, audio, lengths, mask)
  assert out["context"].shape == (3, frames, 8) and out["quantized"].shape == (3, frames, 8)
  assert out["probs"].shape == (3, frames, 2, 4) and out["features"].shape == (3, frames, 16)
  np.testing.assert_array_equal(out["valid"].sum(1), [39, 24, 4])
  # padding does not change the valid frames' context (attention and positional conv ignore it)
  encode = nnx.jit(lambda m, a, n: m.encode(a, n))
  c_short, _ = encode(model, audio[1:2, :500], lengths[1:2])
  c_padded, _ = encode(model, audio[1:2].at[:, 500:].set(3.0), lengths[1:2])
  np.testing.assert_allclose(c_short[0, :20], c_padded[0, :20], atol=1e-4)


def test_crop_and_normalize():
  audio = jnp.tile(jnp.arange(10.0)[None], (2, 1))
  lengths = jnp.array([10, 4])
  cropped, new_len = random_crop(jax.random.PRNGKey(0), audio, lengths, 6)
  np.testing.assert_array_equal(new_len, [6, 4])
  assert cropped[0, 0] + 5 == cropped[0, 5] and 0 <= cropped[0, 0] <= 4
  np.testing.assert_array_equal(cropped[1], [0, 1, 2, 3, 4, 5])  # short: keeps its start
  x = normalize(cropped, new_len)
  np.testing.assert_allclose(x[1, :4].mean(), 0, atol=1e-6)
  np.testing.assert_allclose(x[1, :4].std(), 1, atol=1e-4)
  np.testing.assert_array_equal(x[1, 4:], 0)


def test_audio_folder_source_labels_splits_and_bad_files(tmp_path):
  from sslax.data import get_source

  folder = write_wav_folder(tmp_path / "wav", extra_files=bad_wav_files())
  config = wav2vec2_smoke_config(folder, tmp_path / "tfds")
  with pytest.raises(ValueError, match=r"wav/0_ann_92.wav: expected a non-empty recording, got 0 samples"):
    get_source(config.data, "train")
  config = wav2vec2_smoke_config(folder, tmp_path / "tfds", **{"data.on_bad_example": "skip"})
  train, test = get_source(config.data, "train"), get_source(config.data, "test")
  assert len(train) == 3 * 2 * 3 and len(test) == 3 * 2 * 5  # index >= 5 / < 5 of 8 per digit and speaker
  assert len(train.skipped_examples) == 3
  skipped = "\n".join(train.skipped_examples)
  assert "0_ann_92.wav: expected a non-empty recording" in skipped
  assert "1_ann_90.wav: cannot decode the wav file" in skipped and "2_bob_91.wav: cannot decode" in skipped
  record = train[0]
  assert record["audio"].dtype == np.float32 and np.abs(record["audio"]).max() <= 1.0
  labels = {(int(train[i]["label"]), int(train[i]["speaker"])) for i in range(len(train))}
  assert labels == {(d, s) for d in range(3) for s in range(2)}


def test_audio_is_resampled(tmp_path):
  from sslax.data import decode_wav
  from helpers import wav_bytes

  tone = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440) * 10000).astype(np.int16)
  out = decode_wav("x.wav", wav_bytes(tone, 16000), 8000)
  assert out.shape == (8000,) and out.dtype == np.float32


def test_bad_audio_config_fails_before_compiling(tmp_path):
  from sslax.methods import make_method

  folder = write_wav_folder(tmp_path / "wav")
  with pytest.raises(ValueError, match=r"audio.crop_samples: expected a crop long enough"):
    make_method(wav2vec2_smoke_config(folder, tmp_path / "tfds", **{"audio.crop_samples": 100}))
  with pytest.raises(ValueError, match=r"method.mask_prob: expected a number in \(0, 1\], got 1.5"):
    make_method(wav2vec2_smoke_config(folder, tmp_path / "tfds", **{"method.mask_prob": 1.5}))
  method = make_method(wav2vec2_smoke_config(folder, tmp_path / "tfds"))
  with pytest.raises(ValueError, match=r"batch.audio: expected a float dtype"):
    method.validate_batch({"audio": np.zeros((8, 2400), np.int16), "length": np.zeros(8, np.int32)}, 8)
  with pytest.raises(ValueError, match=r"batch.audio: expected rank 2"):
    method.validate_batch({"audio": np.zeros((8, 2400, 1), np.float32), "length": np.zeros(8, np.int32)}, 8)


def test_smoke_pretrain_then_probe_digit_and_speaker_then_finetune(tmp_path, capsys):
  import json

  from sslax.cli import main
  from sslax.train.loop import train

  folder = write_wav_folder(tmp_path / "wav")
  config = wav2vec2_smoke_config(folder, tmp_path / "tfds", **{"eval.linear_probe": True})
  result = train(config, str(tmp_path / "run"), progress=False)
  report = result.report
  assert report["steps"] == 3
  # each digit is a tone of its own pitch, each speaker shifts it: separable from any working
  # encoder's features (chance: 1/3 for digits, 1/2 for speakers); measured 1.0
  for key in ("knn_top1", "linear_top1", "speaker/knn_top1", "speaker/linear_top1"):
    assert report[key] > 0.9, (key, report)
  assert os.path.exists(tmp_path / "run" / "report.json")
  # few-label fine-tuning from the checkpoint: one recording per digit per speaker, conv encoder frozen
  args = ["finetune", "--config", os.path.join(os.path.dirname(__file__), "..", "experiments",
                                                "wav2vec2_fsdd.py:smoke"),
          "--set", f"data.paths={{'train': '{folder}', 'test': '{folder}'}}",
          "--set", f"data.data_dir='{tmp_path / 'tfds'}'", "--output", str(tmp_path / "ft.json")]
  capsys.readouterr()
  assert main([*args, "--workdir", str(tmp_path / "run")]) == 0
  out = json.loads((tmp_path / "ft.json").read_text())
  # 6 labelled recordings, 20 steps: above chance (1/3); measured 1.0
  assert out["num_labelled"] == 3 * 2 and out["init"] == "checkpoint" and out["top1"] > 0.45, out
  total = sum(int(np.size(x)) for x in jax.tree.leaves(result.state.params))
  frozen = sum(int(np.size(x)) for x in jax.tree.leaves(result.state.params["feature_encoder"]))
  assert out["trained_params"] == total - frozen + 32 * 3 + 3  # plus the head (dim 32, 3 digits)
  # the fine-tuning is a run of its own: checkpointed, so the same command finds it finished and
  # reports the same figures
  ft_dir = out["finetune_dir"]
  assert os.path.exists(os.path.join(ft_dir, "checkpoints")) and os.path.exists(os.path.join(ft_dir, "metrics.jsonl"))
  assert main([*args, "--workdir", str(tmp_path / "run")]) == 0
  again = json.loads((tmp_path / "ft.json").read_text())
  assert again == out
