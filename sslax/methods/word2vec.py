"""word2vec (Mikolov et al. 2013a, b): skip-gram and CBOW with negative sampling, as the C tool
(tmikolov/word2vec, `word2vec.c`) trains them, through the shared train step.

Per batch of packed word rows ({"ids": [B, L]}, a word-level vocabulary,
`data.tokenizer='word'`; `</s>` ends each line of the corpus), all drawn on
device from the step's key:

1. **Frequent-word subsampling** (2013b, eq. 5 as the C code implements it): a
   word of count c among N training words is kept with probability
   (sqrt(c / (t N)) + 1) t N / c (`method.sample` = t; 0 keeps every word);
   the discarded words and `<unk>` are removed before windows are taken, as
   the C code does.
2. **A randomly shrunk window**: each centre's window is `method.window - b`,
   b uniform in [0, window), inside its sentence (the C code's `</s>` ends a
   sentence).
3. **Negative sampling** (2013b, eq. 4): `method.negatives` noise words per
   positive from the unigram distribution to the power 3/4; a noise word
   equal to the target is skipped, as in the C code.
   - skip-gram: each (centre, context) pair; the context word's input vector
     predicts the centre (the C code's roles);
   - CBOW: the mean of the context words' input vectors predicts the centre;
     its gradient reaches every context word whole (the C code adds `neu1e` to
     each, not `neu1e / cw`), so the mean is taken in the forward pass only.

The loss is the sum over the batch's positive pairs (CBOW: centres) of
-log s(u.v) - sum_k log s(-u_k.v), word2vec.c's objective. word2vec.c takes
one SGD step of `alpha` per pair, one after another; summed into one
synchronous step over a batch of ~26k pairs that diverges (a frequent word is
the noise word of thousands of pairs at once: non-finite by step 100 at alpha
0.025), so the `cpu` recipe uses Adam (`optim`), as PyTorch ports of
word2vec do with SparseAdam, with word2vec.c's linear decay of the learning
rate. Adam does not see the loss's scale except through its epsilon: on the
sum, a rare word's gradient stays far above it (on the mean over 26k pairs it
would not).
The unigram counts come from the training split in `refresh` before step 0
and live in `method_state` (checkpointed with the run). With
`sharding.rules = (('.*', 'fsdp'),)` both tables are split over the mesh
along the vocabulary.

What optax, Flax and the data pipeline lack and this file writes: the
subsampling, shrunk windows and noise draws on device.
"""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.config import check_config_value, is_positive_int
from sslax.data.modality import TokenRows
from sslax.data.pipeline import eval_batches
from sslax.eval.word_vectors import WordVectors
from sslax.losses.word2vec import negative_sampling_loss
from sslax.methods.base import Method, MethodCard, register
from sslax.models.pooling import masked_mean

log = logging.getLogger("sslax")

ARCHITECTURES = ("skipgram", "cbow")


class Word2Vec(nnx.Module):
  """The two tables of word2vec.c: `input` (syn0, uniform in [-0.5, 0.5) / dim: the word vectors)
  and `output` (syn1neg, zeros)."""

  def __init__(self, vocab_size: int, dim: int, *, rngs: nnx.Rngs):
    def uniform(key, shape, dtype=jnp.float32):
      return (jax.random.uniform(key, shape, dtype) - 0.5) / dim

    self.input = nnx.Embed(vocab_size, dim, embedding_init=uniform, rngs=rngs)
    self.output = nnx.Embed(vocab_size, dim, embedding_init=nnx.initializers.zeros, rngs=rngs)


def keep_probability(counts: jax.Array, sample: float) -> jax.Array:
  """[V] probability of keeping each word: word2vec.c's (sqrt(c / (t N)) + 1) t N / c, at most 1;
  1 everywhere for t = 0. Words of count 0 (specials) get 0."""
  counts = counts.astype(jnp.float32)
  if sample <= 0:
    return (counts > 0).astype(jnp.float32)
  tn = sample * jnp.sum(counts)
  p = (jnp.sqrt(counts / tn) + 1.0) * tn / jnp.maximum(counts, 1.0)
  return jnp.where(counts > 0, jnp.minimum(p, 1.0), 0.0)


def noise_cdf(counts: jax.Array, power: float = 0.75) -> jax.Array:
  """[V] cumulative unigram^power distribution (word2vec.c's `InitUnigramTable`, without the table)."""
  w = jnp.where(counts > 0, counts.astype(jnp.float32) ** power, 0.0)
  return jnp.cumsum(w) / jnp.sum(w)


def draw_noise(key: jax.Array, cdf: jax.Array, shape) -> jax.Array:
  """Noise word ids of `shape` from the distribution `cdf` [V]."""
  u = jax.random.uniform(key, shape)
  return jnp.minimum(jnp.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1).astype(jnp.int32)


def context_windows(key: jax.Array, ids: jax.Array, keep: jax.Array, sentence: jax.Array, window: int):
  """Subsampled rows and their (centre, context) pairs.

  Args:
    ids: [B, L] word ids; keep: [B, L] bool, the words that stay (after subsampling, no specials);
    sentence: [B, L] int sentence number of each position; window: the largest window.

  Returns:
    (centres [B, L], contexts [B, L, 2 window], valid [B, L, 2 window] bool): the kept words moved
    to the front of each row in order (the discarded ones are removed, as word2vec.c drops them
    when it reads a sentence), and for each kept centre the words within its shrunk window
    `window - b` (b uniform in [0, window)) in its sentence.
  """
  b, length = ids.shape
  order = jnp.argsort(~keep, axis=1, stable=True)  # kept first, in order
  cid = jnp.take_along_axis(ids, order, axis=1)
  ckeep = jnp.take_along_axis(keep, order, axis=1)
  csent = jnp.take_along_axis(sentence, order, axis=1)
  reach = window - jax.random.randint(key, (b, length), 0, window)  # the shrunk window, 1..window
  offsets = jnp.asarray([o for o in range(-window, window + 1) if o != 0], jnp.int32)
  pos = jnp.arange(length)[:, None] + offsets[None, :]  # [L, 2W]
  inside = (pos >= 0) & (pos < length)
  pos = jnp.clip(pos, 0, length - 1)
  contexts = cid[:, pos]  # [B, L, 2W]
  valid = (inside[None] & ckeep[:, :, None] & ckeep[:, pos] & (csent[:, pos] == csent[:, :, None])
           & (jnp.abs(offsets)[None, None, :] <= reach[:, :, None]))
  return cid, contexts, valid


@register("word2vec")
class Word2VecMethod(Method):
  card = MethodCard(
      family="word embeddings",
      paper="Mikolov et al. 2013, [Efficient Estimation of Word Representations in Vector Space]"
            "(https://arxiv.org/abs/1301.3781) and [Distributed Representations of Words and Phrases]"
            "(https://arxiv.org/abs/1310.4546)",
      objective="log s(u_o . v_c) + sum over k noise words of log s(-u_k . v_c), noise from unigram^0.75, "
                "skip-gram or CBOW, frequent words subsampled, windows shrunk at random",
      loss="sslax.losses.word2vec.negative_sampling_loss",
      reference="tmikolov/word2vec `word2vec.c` (TrainModelThread)",
      tests=("tests/test_word2vec.py::test_smoke_pretrain_then_word_vectors",
             "tests/test_word2vec.py::test_negative_sampling_loss_matches_numpy",
             "tests/test_word2vec.py::test_windows_subsampling_and_noise_follow_word2vec_c"),
      results=("word2vec on", "word2vec, skip-gram", "word2vec, CBOW", "random init"))

  def check_config(self):
    c = self.config
    check_config_value(c, "method.architecture", lambda v: v in ARCHITECTURES, f"one of {list(ARCHITECTURES)}")
    check_config_value(c, "method.window", is_positive_int, "a positive integer (words each side)")
    check_config_value(c, "method.negatives", is_positive_int, "a positive integer (noise words per positive)")
    check_config_value(c, "method.sample", lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
                       "a number in [0, 1) (0: no subsampling)")
    check_config_value(c, "model.dim", is_positive_int, "a positive integer")
    check_config_value(c, "data.tokenizer", lambda v: v != "wordpiece" and v != "bpe",
                       "'word' (a word-level vocabulary) or a word-level tokenizer.json")
    for name in ("pad", "unk", "eos"):
      check_config_value(c, f"data.special_ids.{name}", lambda v: isinstance(v, int) and 0 <= v < c.model.vocab_size,
                         f"an id in [0, model.vocab_size={c.model.vocab_size})")

  @property
  def inputs(self) -> TokenRows:
    seq_len = int(self.config.data.seq_len)
    return TokenRows(seq_len=seq_len, vocab_size=int(self.config.model.vocab_size), max_len=seq_len)

  @property
  def specials(self) -> tuple[int, ...]:
    return tuple(int(v) for v in self.config.data.special_ids.values())

  def words(self, ids: jax.Array) -> jax.Array:
    """[B, L] bool: the positions of `ids` that hold a word (not a special id)."""
    return ~jnp.isin(ids, jnp.asarray(self.specials, jnp.int32))

  def build_model(self, rngs: nnx.Rngs) -> Word2Vec:
    return Word2Vec(int(self.config.model.vocab_size), int(self.config.model.dim), rngs=rngs)

  def init_state(self, model, key):
    # unigram counts of the training split: zeros until `refresh` counts them before step 0
    return {"counts": jnp.zeros((int(self.config.model.vocab_size),), jnp.float32)}

  @property
  def refresh_every(self) -> int:
    return 1 << 62  # once, before step 0

  def refresh(self, state, data, mesh, step: int):
    """Counts every word of the training split (specials excluded) into `method_state.counts`."""
    if data.train is None:
      raise ValueError("method.name: 'word2vec' counts the training split's words, and the run has none")
    vocab = int(self.config.model.vocab_size)
    counts = np.zeros(vocab, np.float64)
    for batch in eval_batches(data.train, batch_size=1024, transform=self.inputs.transform()):
      counts += np.bincount(np.asarray(batch["ids"]).reshape(-1), minlength=vocab)[:vocab]
    counts[list(self.specials)] = 0
    if not counts.any():
      raise ValueError("data: the training split has no words outside data.special_ids (expected some text)")
    log.info("word2vec: %d training words, %d distinct", int(counts.sum()), int((counts > 0).sum()))
    return state.replace(method_state={**state.method_state, "counts": jnp.asarray(counts, jnp.float32)})

  def loss(self, model, batch, method_state, key, step, target=None):
    m = self.config.method
    ids = batch["ids"]
    counts = method_state["counts"]
    k_keep, k_window, k_noise = jax.random.split(key, 3)
    word = self.words(ids)
    keep = word & (jax.random.uniform(k_keep, ids.shape) < keep_probability(counts, m.sample)[ids])
    eos = int(self.config.data.special_ids["eos"])
    sentence = jnp.cumsum((ids == eos) | (batch["segments"] == 0), axis=1)
    centres, contexts, valid = context_windows(k_window, ids, keep, sentence, int(m.window))
    cdf = noise_cdf(counts)
    w_in, w_out = model.input.embedding[...], model.output.embedding[...]
    if m.architecture == "skipgram":  # the context word predicts the centre (word2vec.c's l1 = syn0[last_word])
      noise = draw_noise(k_noise, cdf, (*valid.shape, int(m.negatives)))
      total, n = negative_sampling_loss(w_in[contexts], w_out[centres][:, :, None, :], w_out[noise],
                                        noise != centres[:, :, None, None], valid.astype(jnp.float32))
    else:
      cw = jnp.sum(valid, axis=-1, keepdims=True).astype(jnp.float32)
      summed = jnp.einsum("blc,blcd->bld", valid.astype(jnp.float32), w_in[contexts])
      hidden = summed + jax.lax.stop_gradient(summed / jnp.maximum(cw, 1.0) - summed)  # mean forward, sum backward
      noise = draw_noise(k_noise, cdf, (*centres.shape, int(m.negatives)))
      total, n = negative_sampling_loss(hidden, w_out[centres], w_out[noise], noise != centres[..., None],
                                        (cw[..., 0] > 0).astype(jnp.float32))
    metrics = {"pair_loss": total / jnp.maximum(n, 1.0), "positives": n,
               "kept_fraction": jnp.sum(keep) / jnp.maximum(jnp.sum(word), 1)}
    return total, metrics, method_state

  def word_vectors(self, model) -> jax.Array:
    """[V, D] the input table: the word vectors."""
    return model.input.embedding[...]

  def features(self, model, inputs):
    """The mean word vector of each row's words [B, D] (a bag-of-vectors sentence feature)."""
    ids = inputs["ids"]
    return masked_mean(model.input.embedding[...][ids], self.words(ids))

  def evaluators(self):
    return (WordVectors(),)
