"""Jigsaw puzzles and relative patch position: the permutation set, the tiles and their gaps, the pairs,
and the losses written out."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from helpers import digits_batch, log_softmax, method_digits_config
from sslax.methods import make_method
from sslax.augment.tiles import channel_jitter, cut_tiles, standardize
from sslax.methods.jigsaw import hamming_permutations
from sslax.models.functional import merge_model, split_model


def test_permutations_are_picked_for_maximal_mean_hamming_distance():
  perms = hamming_permutations(9, 12, seed=3)
  assert perms.shape == (12, 9) and len({tuple(p) for p in perms.tolist()}) == 12
  assert all(sorted(p) == list(range(9)) for p in perms.tolist())
  # each pick after the first has the largest mean Hamming distance to those before it, over all 9!
  import itertools

  every = np.array(list(itertools.permutations(range(9))))
  for i in range(1, 4):
    mean = np.mean(every[:, None, :] != perms[None, :i, :], axis=2).mean(axis=1)
    chosen = np.mean(perms[i][None, :] != perms[:i], axis=1).mean()
    assert chosen == pytest.approx(mean.max())
  assert hamming_permutations(9, 12, seed=3).tolist() == perms.tolist()  # deterministic


def test_tiles_lie_in_their_cells_and_are_standardized():
  # pixel value = 100 * cell index + position inside the image: a tile's values name its cell
  rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
  cell = (rows // 16) * 2 + cols // 16
  image = (100 * cell + 0.01 * (rows * 32 + cols)).astype(np.float32)[None, :, :, None].repeat(3, 0)
  tiles = np.asarray(cut_tiles(jax.random.PRNGKey(0), jnp.asarray(image), grid=2, tile=12))
  assert tiles.shape == (3, 4, 12, 12, 1)
  np.testing.assert_array_equal(np.floor(tiles.min(axis=(2, 3, 4)) / 100), [[0, 1, 2, 3]] * 3)
  np.testing.assert_array_equal(np.floor(tiles.max(axis=(2, 3, 4)) / 100), [[0, 1, 2, 3]] * 3)
  # the offsets (the gaps) differ between images and between tiles
  assert len({float(t[0, 0, 0]) for t in tiles.reshape(12, 12, 12, 1)}) > 4
  x = np.asarray(standardize(jnp.asarray(tiles)))
  np.testing.assert_allclose(x.mean(axis=(2, 3)), 0, atol=1e-4)
  np.testing.assert_allclose(x.std(axis=(2, 3)), 1, rtol=1e-3)


def test_loss_is_the_cross_entropy_of_the_permutation_written_out():
  method = make_method(method_digits_config("jigsaw"))
  graphdef, params, batch_stats = split_model(method.build_model(nnx.Rngs(0)))
  state = method.init_state(None, jax.random.PRNGKey(0))
  perms = np.asarray(state["permutations"])
  assert perms.shape == (24, 4)
  images = jnp.asarray(digits_batch(16)["image"])
  key = jax.random.PRNGKey(5)
  tiles, labels = method.puzzles(key, images, state["permutations"])
  # the shuffle written out: position i of puzzle b shows tile perms[label_b][i] of the unshuffled ones
  k_aug, k_cut, k_jit, _ = jax.random.split(key, 4)
  from sslax.augment import augment_batch

  m = method.config.method
  plain = cut_tiles(k_cut, augment_batch(k_aug, images, method.config.augment), m.grid, m.tile_size)
  plain = standardize(channel_jitter(k_jit, plain, m.channel_jitter))
  plain, labels = np.asarray(plain), np.asarray(labels)
  want = np.stack([plain[b][perms[labels[b]]] for b in range(16)])
  np.testing.assert_allclose(np.asarray(tiles), want, rtol=1e-6, atol=1e-6)
  model = merge_model(graphdef, params, batch_stats)
  loss, aux, _ = method.loss(model, {"image": images}, state, key, jnp.asarray(0))
  logits, _ = merge_model(graphdef, params, batch_stats)(jnp.asarray(tiles), train=True)
  logits = np.asarray(logits, np.float64)
  log_p = log_softmax(logits)
  np.testing.assert_allclose(float(loss), -np.mean(log_p[np.arange(16), labels]), rtol=1e-5)
  assert float(aux["accuracy"]) == pytest.approx(np.mean(logits.argmax(1) == labels))


@pytest.mark.parametrize("override,message", [
    ({"method.tile_size": 5}, "method.tile_size: expected an integer in [1, 4] (the crop's cell of "
                              "augment.crop_size / method.grid), got 5"),
    ({"method.num_permutations": 30}, "method.num_permutations: expected an integer in [2, 24] (the 4! orders "
                                      "of the tiles), got 30"),
    ({"method.grid": 4}, "method.grid: expected 2 or 3"),
])
def test_jigsaw_config_errors_name_the_key(override, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    make_method(method_digits_config("jigsaw", **override))


def test_relative_position_pairs_and_loss_written_out():
  from sslax.methods.relative_position import CENTRE, NEIGHBOURS

  method = make_method(method_digits_config("relative_position"))
  graphdef, params, batch_stats = split_model(method.build_model(nnx.Rngs(0)))
  images = jnp.asarray(digits_batch(8)["image"])
  key = jax.random.PRNGKey(1)
  patches = method.patches(key, images)
  assert patches.shape == (8, 9, 2, 2, 1)
  model = merge_model(graphdef, params, batch_stats)
  # pair j of an image reads the centre and neighbour NEIGHBOURS[j] only (evaluation mode: rows independent)
  base, _ = model(patches, train=False)
  for j, cell in enumerate(NEIGHBOURS[:3]):
    moved, _ = model(patches.at[0, cell].set(0.0), train=False)
    changed = np.flatnonzero(np.abs(np.asarray(moved - base)).max(axis=1) > 0)
    assert changed.tolist() == [j]
  moved, _ = model(patches.at[0, CENTRE].set(0.0), train=False)
  assert np.flatnonzero(np.abs(np.asarray(moved - base)).max(axis=1) > 0).tolist() == list(range(8))
  # the loss: 8-way cross-entropy with label j for pair j
  loss, aux, _ = method.loss(model, {"image": images}, {}, key, jnp.asarray(0))
  logits, _ = merge_model(graphdef, params, batch_stats)(patches, train=True)
  logits = np.asarray(logits, np.float64)
  labels = np.tile(np.arange(8), 8)
  log_p = log_softmax(logits)
  np.testing.assert_allclose(float(loss), -np.mean(log_p[np.arange(64), labels]), rtol=1e-5)
  assert float(aux["accuracy"]) == pytest.approx(np.mean(logits.argmax(1) == labels))
