"""Jigsaw puzzles: which permutation of an image's tiles is the network shown?

Noroozi & Favaro, "Unsupervised Learning of Visual Representations by
Solving Jigsaw Puzzles", ECCV 2016, as bbrattoli/JigsawPuzzlePytorch:

- the augmented image is cut into a `method.grid` x `method.grid` grid of
  cells; from each cell one tile of `method.tile_size` pixels is taken at a
  random offset (the random gaps that keep the network from matching edges);
- each tile gets its own colour jitter (a random shift of each channel,
  `method.channel_jitter`) and is standardized by its own per-channel mean and
  std (against chromatic shortcuts and low-level statistics);
- the tiles are shuffled by one of `method.num_permutations` permutations,
  chosen greedily for maximal mean Hamming distance from a fixed seed and kept
  in `TrainState.method_state` (checkpointed with the run);
- a shared trunk (the encoder) embeds every tile, a per-tile layer maps it to
  `head.tile_dim`, the tiles' outputs are concatenated in their shuffled order
  (late fusion) and an MLP classifies the permutation.

At 32x32 (CIFAR-10) the grid is 2x2, whose 24 permutations are all of them:
a 3x3 grid leaves tiles of about 8 pixels after the gaps, and upsampling the
images 3x would cost the 2 cores 9x the pixels per step. The probes read the
encoder on the whole image, standardized per image as the tiles were.
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from sslax.augment.tiles import channel_jitter, cut_tiles, standardize
from sslax.config import check_config_value, is_positive_int
from sslax.eval import real_rows
from sslax.eval.collapse import collapse_metrics
from sslax.methods.base import MethodCard, register
from sslax.methods.spatial_pretext import SpatialPretext
from sslax.models import MLPHead, build_encoder


@functools.lru_cache(maxsize=8)
def hamming_permutations(num_tiles: int, count: int, seed: int = 0) -> np.ndarray:
  """[count, num_tiles] int32 permutations picked greedily for maximal mean Hamming distance, as
  the reference's `select_permutations.py`: start from a random one, then repeatedly add the
  permutation whose mean Hamming distance to those picked is largest. Deterministic in `seed`.

  >>> p = hamming_permutations(4, 24)
  >>> p.shape, len({tuple(r) for r in p.tolist()})  # a 2x2 grid: all 24 permutations
  ((24, 4), 24)
  >>> hamming_permutations(9, 3, seed=1).tolist() == hamming_permutations(9, 3, seed=1).tolist()
  True
  """
  candidates = np.array(list(itertools.permutations(range(num_tiles))), np.int8)
  if not 1 <= count <= len(candidates):
    raise ValueError(f"method.num_permutations: expected an integer in [1, {len(candidates)}] for "
                     f"{num_tiles} tiles, got {count}")
  rng = np.random.default_rng(seed)
  remaining = np.ones(len(candidates), bool)
  total = np.zeros(len(candidates), np.int64)  # summed Hamming distance to the picked ones
  picked = [int(rng.integers(len(candidates)))]
  for _ in range(count - 1):
    remaining[picked[-1]] = False
    total += np.sum(candidates != candidates[picked[-1]], axis=1)
    picked.append(int(np.argmax(np.where(remaining, total, -1))))
  out = candidates[picked].astype(np.int32)
  out.setflags(write=False)  # cached: shared by every caller
  return out


class JigsawNet(nnx.Module):
  """The shared trunk, a per-tile layer, and the permutation classifier over the concatenated tiles:
  `(logits [B, P], {"embedding": pooled trunk features [B * T, D]})` for tiles [B, T, t, t, C]."""

  def __init__(self, model_config, head_config, num_tiles: int, num_permutations: int, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.tile = MLPHead(self.encoder.num_features, head_config.tile_dim, head_config.tile_dim, num_layers=1,
                        batch_norm=False, rngs=rngs)
    self.classifier = MLPHead(num_tiles * head_config.tile_dim, head_config.hidden_dim, num_permutations,
                              num_layers=2, batch_norm=True, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, tiles: jax.Array, train: bool = True):
    b, t = tiles.shape[:2]
    h, _ = self.encoder(tiles.reshape(b * t, *tiles.shape[2:]), train=train)
    per_tile, _ = self.tile(h, train=train)
    logits, _ = self.classifier(jax.nn.relu(per_tile).reshape(b, -1), train=train)
    return logits, {"embedding": h}


@register("jigsaw")
class Jigsaw(SpatialPretext):
  """Jigsaw puzzles on the shared train step; see `experiments/jigsaw_cifar10.py`."""
  card = MethodCard(
      family="pretext",
      paper="Noroozi & Favaro 2016, [Unsupervised Learning of Visual Representations by Solving Jigsaw "
            "Puzzles](https://arxiv.org/abs/1603.09246)",
      objective="cross-entropy of which of a fixed set of maximal-Hamming-distance permutations shuffled "
                "the image's tiles; a shared trunk per tile, late fusion",
      loss="",
      reference="bbrattoli/JigsawPuzzlePytorch (`JigsawImageLoader.py`, `select_permutations.py`, "
                "`JigsawNetwork.py`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_jigsaw.py::test_loss_is_the_cross_entropy_of_the_permutation_written_out",
             "tests/test_jigsaw.py::test_tiles_lie_in_their_cells_and_are_standardized"),
      results=("Every method on CIFAR-10", "random init", "Jigsaw puzzles"))

  @property
  def num_tiles(self) -> int:
    return int(self.config.method.grid) ** 2

  def check_config(self):
    c, m = self.config, self.config.method
    check_config_value(c, "method.grid", lambda v: isinstance(v, int) and 2 <= v <= 3,
                       "2 or 3 (a 4x4 grid has 16! orders to choose the permutations from)")
    cell = self.check_square_crop(int(m.grid))
    check_config_value(c, "method.tile_size", lambda v: isinstance(v, int) and 0 < v <= cell,
                       f"an integer in [1, {cell}] (the crop's cell of augment.crop_size / method.grid)")
    check_config_value(c, "method.channel_jitter", lambda v: v >= 0, "a non-negative number")
    for key in ("tile_dim", "hidden_dim"):
      check_config_value(c, f"head.{key}", is_positive_int, "a positive integer")
    total = math.factorial(self.num_tiles)
    check_config_value(c, "method.num_permutations", lambda v: isinstance(v, int) and 2 <= v <= total,
                       f"an integer in [2, {total}] (the {self.num_tiles}! orders of the tiles)")
    check_config_value(c, "method.permutation_seed", lambda v: isinstance(v, int) and v >= 0,
                       "a non-negative integer")

  def build_model(self, rngs: nnx.Rngs) -> JigsawNet:
    return JigsawNet(self.config.model, self.config.head, self.num_tiles, self.config.method.num_permutations,
                     rngs=rngs)

  @property
  def permutations(self) -> np.ndarray:
    """[P, T] the run's permutation set (`hamming_permutations` of the config)."""
    m = self.config.method
    return hamming_permutations(self.num_tiles, m.num_permutations, m.permutation_seed)

  def init_state(self, model, key):
    return {"permutations": jnp.asarray(self.permutations)}

  def puzzles(self, key, images, permutations, train: bool = True):
    """(shuffled, standardized tiles [B, T, t, t, C], permutation labels [B]) of raw images, cut from
    an augmented view (`train`) or the evaluation view."""
    m = self.config.method
    k_aug, k_cut, k_jit, k_perm = jax.random.split(key, 4)
    tiles = cut_tiles(k_cut, self.view(k_aug, images, train), m.grid, m.tile_size)
    b = tiles.shape[0]
    tiles = standardize(channel_jitter(k_jit, tiles, m.channel_jitter))
    labels = jax.random.randint(k_perm, (b,), 0, permutations.shape[0])
    order = permutations[labels]  # [B, T]: position i shows tile order[i]
    return jnp.take_along_axis(tiles, order[:, :, None, None, None], axis=1), labels

  def loss(self, model, batch, method_state, key, step, target=None):
    tiles, labels = self.puzzles(key, batch["image"], method_state["permutations"])
    logits, features = model(tiles, train=True)
    logits = logits.astype(jnp.float32)
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    aux = {"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels), **collapse_metrics(features["embedding"])}
    return loss, aux, method_state

  def heldout(self, model, inputs, key) -> dict:
    """{"pretext_accuracy": (puzzles solved, images)}: one puzzle per held-out image (evaluation view,
    random tiles and permutation from `key`); padding rows (all zeros) are not counted."""
    tiles, labels = self.puzzles(key, inputs["image"], jnp.asarray(self.permutations), train=False)
    logits, _ = model(tiles, train=False)
    real = real_rows(inputs["image"])
    return {"pretext_accuracy": (jnp.sum((jnp.argmax(logits, -1) == labels) * real), jnp.sum(real))}
