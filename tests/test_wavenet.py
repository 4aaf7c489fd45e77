"""WaveNet: the buffered one-step generation equals the forward pass (and nothing sees the future);
mu-law companding against NumPy (the loss is GPT's `causal_lm_loss`, tested in test_language)."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.augment.audio import mu_law_decode, mu_law_encode
from sslax.models.wavenet import WaveNet


def test_generation_equals_the_forward_pass_and_is_causal():
  model = WaveNet(dilations=(1, 2, 4, 8, 1, 2), channels=8, skip=16, rngs=nnx.Rngs(0))
  assert model.receptive_field == 2 + 18
  ids = jax.random.randint(jax.random.key(1), (2, 80), 0, 256)
  full = np.asarray(model(ids))
  _, logits = model.generate(jax.random.key(2), ids[:, 0], 79, forced=ids[:, 1:])
  np.testing.assert_allclose(np.asarray(logits), full[:, :79], atol=1e-5)
  # position t's logits do not change when samples after t do, and do change with sample t
  changed = ids.at[:, 25].set((ids[:, 25] + 7) % 256)
  other = np.asarray(model(changed))
  np.testing.assert_array_equal(other[:, :25], full[:, :25])
  assert np.abs(other[:, 25] - full[:, 25]).max() > 0
  # beyond the receptive field nothing changes either
  assert np.abs(other[:, 25 + model.receptive_field:] - full[:, 25 + model.receptive_field:]).max() == 0
  drawn, _ = jax.jit(lambda k: model.generate(k, ids[:, 0], 30))(jax.random.key(3))
  assert drawn.shape == (2, 30) and 0 <= int(drawn.min()) and int(drawn.max()) < 256


def test_mu_law_matches_numpy():
  x = np.linspace(-1, 1, 1001).astype(np.float32)
  mu = 255
  ref = np.floor((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) + 1) / 2 * mu + 0.5).astype(int)
  np.testing.assert_array_equal(np.asarray(mu_law_encode(jnp.asarray(x))), ref)
  # decoding a class gives back the waveform within the class's width (fine near 0, coarse near 1)
  back = np.asarray(mu_law_decode(mu_law_encode(jnp.asarray(x))))
  assert np.abs(back - x)[np.abs(x) < 0.01].max() < 2e-4 and np.abs(back - x).max() < 0.03
