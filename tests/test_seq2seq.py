"""The encoder-decoder Transformer: the key/value-cached decoder equals the teacher-forced one,
targets are causal, source padding is invisible, and greedy decoding reads the cache."""
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.models.seq2seq import EncoderDecoder, greedy_decode


def _model(pre_norm=False):
  return EncoderDecoder(vocab_size=40, max_len=16, dim=32, encoder_depth=2, decoder_depth=2, num_heads=4, mlp_dim=64,
                        dropout=0.0, pre_norm=pre_norm, rngs=nnx.Rngs(0))


def test_cached_decoding_equals_teacher_forcing_and_targets_are_causal():
  rng = np.random.default_rng(0)
  src = jnp.asarray(rng.integers(0, 40, (3, 9)))
  src_valid = jnp.asarray(np.arange(9)[None] < np.array([[9], [6], [3]]))
  tgt = jnp.asarray(rng.integers(0, 40, (3, 7)))
  for pre_norm in (False, True):
    model = _model(pre_norm)
    forced = nnx.jit(lambda m, s, sv, t: m(s, sv, t, jnp.ones(t.shape, bool))[0])
    full = forced(model, src, src_valid, tgt)

    @nnx.jit
    def stepwise(m, s, sv, t):
      memory, _ = m.encode(s, sv)
      cache = m.init_cache(memory, t.shape[1])
      out = []
      for i in range(t.shape[1]):
        logits, cache = m.decode_step(t[:, i:i + 1], cache, sv)
        out.append(logits[:, 0])
      return jnp.stack(out, 1)

    np.testing.assert_allclose(stepwise(model, src, src_valid, tgt), full, atol=2e-5)
    changed = forced(model, src, src_valid, tgt.at[:, 4].set((tgt[:, 4] + 1) % 40))
    np.testing.assert_allclose(changed[:, :4], full[:, :4], atol=1e-6)  # causal on the target side
    assert float(jnp.abs(changed[:, 4:] - full[:, 4:]).max()) > 1e-4
    padded = forced(model, jnp.where(src_valid, src, (src + 7) % 40), src_valid, tgt)
    np.testing.assert_allclose(padded, full, atol=1e-6)  # source padding is not attended


def test_greedy_decode_follows_the_argmax_of_teacher_forcing():
  model = _model()
  src = jnp.asarray(np.random.default_rng(1).integers(0, 40, (2, 8)))
  valid = jnp.ones(src.shape, bool)
  out = greedy_decode(model, src, valid, start_id=1, num_tokens=5)
  assert out.shape == (2, 5) and out.dtype == jnp.int32
  tgt_in = jnp.concatenate([jnp.ones((2, 1), jnp.int32), out[:, :-1]], axis=1)
  logits, _ = model(src, valid, tgt_in, jnp.ones(tgt_in.shape, bool))
  np.testing.assert_array_equal(jnp.argmax(logits, -1), out)
