"""CPC: the InfoNCE over future steps against NumPy, and negatives that are never the positive."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import log_softmax
from sslax.losses.cpc import cpc_loss, sample_future_negatives


@pytest.mark.parametrize("mode", ["utterance", "batch", "speaker"])
def test_cpc_loss_matches_numpy(mode):
  rng = np.random.default_rng(0)
  steps, b, t, c, n = 2, 3, 9, 4, 5
  preds = rng.normal(size=(steps, b, t, c)).astype(np.float32)
  z = rng.normal(size=(b, t, c)).astype(np.float32)
  frames = np.array([9, 7, 4])
  valid = np.arange(t)[None, :] < frames[:, None]
  keys = jax.random.split(jax.random.key(0), steps)
  speakers = jnp.array([4, 1, 4])
  negs = [np.asarray(sample_future_negatives(keys[i], jnp.asarray(frames), t, i + 1, n, mode, speakers))
          for i in range(steps)]
  loss, aux = cpc_loss(jnp.asarray(preds), jnp.asarray(z), jnp.asarray(valid), [jnp.asarray(x) for x in negs], mode)
  flat = z.reshape(b * t, c)
  per_k, acc_k = [], []
  for i in range(steps):
    k = i + 1
    nll, hits = [], []
    for bb in range(b):
      for tt in range(t - k):
        if not valid[bb, tt + k]:
          continue
        p = preds[i, bb, tt]
        cands = z[bb, negs[i][bb, tt]] if mode == "utterance" else flat[negs[i][bb, tt]]
        logits = np.concatenate([[p @ z[bb, tt + k]], cands @ p])
        nll.append(-log_softmax(logits)[0])
        hits.append(np.argmax(logits) == 0)
    per_k.append(np.mean(nll))
    acc_k.append(np.mean(hits))
  np.testing.assert_allclose(float(loss), np.mean(per_k), rtol=1e-5)
  np.testing.assert_allclose(float(aux["accuracy"]), np.mean(acc_k), rtol=1e-6)


@pytest.mark.parametrize("mode", ["utterance", "batch", "speaker"])
def test_negatives_are_never_the_positive(mode):
  b, t, k, n = 4, 30, 3, 64
  frames = np.array([30, 20, 8, 2])
  speakers = np.array([7, 2, 7, 5])  # utterance 3 is its speaker's only one
  idx = np.asarray(sample_future_negatives(jax.random.key(1), jnp.asarray(frames), t, k, n, mode,
                                           jnp.asarray(speakers)))
  assert idx.shape == (b, t - k, n)
  pos = np.arange(k, t)[None, :, None]
  if mode == "utterance":
    for bb in range(b):
      rows = np.arange(t - k) + k < frames[bb]  # anchors whose positive is a valid frame
      assert not np.any(idx[bb][rows] == pos[0][rows]) and idx[bb].max() < frames[bb]
      # uniform over the other valid frames: all of them drawn for the longest utterance
      if frames[bb] == 30:
        assert len(np.unique(idx[bb])) == 30
  else:
    flat_pos = np.arange(b)[:, None, None] * t + pos
    valid = (np.arange(t)[None, :] < frames[:, None]).reshape(-1)
    rows = (np.arange(t - k)[None, :] + k) < frames[:, None]
    assert not np.any((idx == flat_pos)[rows]) and valid[idx].all()
    if mode == "batch":
      assert len(np.unique(idx // t)) == b  # negatives come from every utterance
    else:
      assert (speakers[idx // t] == speakers[:, None, None]).all()  # and only from the anchor's speaker
      assert set(np.unique(idx[0] // t)) == {0, 2}  # both of speaker 7's utterances
      # uniform over the speaker's other valid frames: all 30 + 8 - 1 drawn for an anchor's row set
      assert len(np.unique(idx[0][rows[0]])) == 38


def test_speaker_negatives_put_the_speaker_in_every_batch(tmp_path):
  from helpers import speech_smoke_config, write_wav_folder
  from sslax.methods import make_method

  folder = write_wav_folder(tmp_path / "wav")
  method = make_method(speech_smoke_config("cpc", folder, tmp_path / "tfds", **{"method.negatives": "speaker"}))
  record = {"audio": np.zeros(100, np.int16), "label": 3, "speaker": 1}
  assert int(method.inputs.transform()(record)["speaker"]) == 1
  assert method.inputs.batch_spec(4)["speaker"].shape == (4,)
  with pytest.raises(ValueError, match="'speaker' entry"):
    method.inputs.validate_batch({"audio": np.zeros((8, 8000), np.float32), "length": np.full(8, 8000)}, 8)
  with pytest.raises(ValueError, match="method.negatives: expected one of"):
    make_method(speech_smoke_config("cpc", folder, tmp_path / "tfds", **{"method.negatives": "speakers"}))
  assert "speaker" not in make_method(speech_smoke_config("cpc", folder, tmp_path / "tfds")).inputs.batch_spec(4)
