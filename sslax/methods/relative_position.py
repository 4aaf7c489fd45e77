"""Relative patch position: where, among its 8 neighbours, does a patch lie against the centre one?

Doersch, Gupta, Efros, "Unsupervised Visual Representation Learning by
Context Prediction", ICCV 2015, as mmselfsup's `relative_loc`:

- the augmented image is cut into a 3 x 3 grid of cells, and one patch of
  `method.patch_size` pixels is taken from each cell at a random offset (the
  gaps and jitter that keep the network from matching edges and lines);
- patches are standardized each on its own and, with `augment.grayscale_prob`,
  the image is turned to grayscale (the paper's remedy for chromatic
  aberration, which otherwise gives a patch's position away);
- every image gives all 8 (centre, neighbour) pairs; a shared trunk (the
  encoder) embeds the 9 patches, the two pooled features of a pair are
  concatenated (late fusion) and an MLP classifies the neighbour's position.

The probes read the encoder on the whole image, standardized per image as
the patches were.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sslax.augment.tiles import cut_tiles, standardize
from sslax.config import check_config_value, is_positive_int
from sslax.eval import real_rows
from sslax.eval.collapse import collapse_metrics
from sslax.methods.base import MethodCard, register
from sslax.methods.spatial_pretext import SpatialPretext
from sslax.models import MLPHead, build_encoder

GRID, CENTRE = 3, 4
# the neighbours' cells in raster order; label k is NEIGHBOURS[k] (0 top-left ... 7 bottom-right)
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)


class RelativePositionNet(nnx.Module):
  """Shared trunk over the 9 patches [B, 9, p, p, C] and the pair classifier:
  `(logits [8B, 8], {"embedding": pooled trunk features [9B, D]})`, pairs grouped by image."""

  def __init__(self, model_config, head_config, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.classifier = MLPHead(2 * self.encoder.num_features, head_config.hidden_dim, len(NEIGHBOURS),
                              num_layers=head_config.num_layers, batch_norm=True, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, patches: jax.Array, train: bool = True):
    b = patches.shape[0]
    h, _ = self.encoder(patches.reshape(b * GRID * GRID, *patches.shape[2:]), train=train)
    h = h.reshape(b, GRID * GRID, -1)
    centre = jnp.broadcast_to(h[:, CENTRE:CENTRE + 1], (b, len(NEIGHBOURS), h.shape[-1]))
    pairs = jnp.concatenate([centre, h[:, jnp.array(NEIGHBOURS)]], axis=-1)
    logits, _ = self.classifier(pairs.reshape(b * len(NEIGHBOURS), -1), train=train)
    return logits, {"embedding": h.reshape(b * GRID * GRID, -1)}


def position_labels(batch: int) -> jax.Array:
  """[8B] int32: pair j of image b has label j (its neighbour's position)."""
  return jnp.tile(jnp.arange(len(NEIGHBOURS), dtype=jnp.int32), batch)


@register("relative_position")
class RelativePosition(SpatialPretext):
  """Relative patch position on the shared train step; see `experiments/relative_position_cifar10.py`."""
  card = MethodCard(
      family="pretext",
      paper="Doersch et al. 2015, [Unsupervised Visual Representation Learning by Context Prediction]"
            "(https://arxiv.org/abs/1505.05192)",
      objective="8-way cross-entropy of which of the 8 neighbouring cells of a 3 x 3 grid a patch came from, "
                "given it and the centre patch; random gaps, per-patch standardization, grayscale",
      loss="",
      reference="open-mmlab/mmselfsup `relative_loc` (`RelativeLoc`, `RandomPatchWithLabels`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_jigsaw.py::test_relative_position_pairs_and_loss_written_out"),
      results=("Every method on CIFAR-10", "random init", "Relative patch position"))

  def check_config(self):
    c = self.config
    cell = self.check_square_crop(GRID)
    check_config_value(c, "method.patch_size", lambda v: isinstance(v, int) and 0 < v <= cell,
                       f"an integer in [1, {cell}] (the cell of augment.crop_size / 3)")
    check_config_value(c, "head.hidden_dim", is_positive_int, "a positive integer")
    check_config_value(c, "head.num_layers", lambda v: isinstance(v, int) and v >= 1, "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> RelativePositionNet:
    return RelativePositionNet(self.config.model, self.config.head, rngs=rngs)

  def patches(self, key, images, train: bool = True) -> jax.Array:
    """The 9 standardized patches [B, 9, p, p, C] of each image (augmented view, or the evaluation view)."""
    k_aug, k_cut = jax.random.split(key)
    return standardize(cut_tiles(k_cut, self.view(k_aug, images, train), GRID, self.config.method.patch_size))

  def _logits_and_loss(self, model, patches, train):
    logits, features = model(patches, train=train)
    logits = logits.astype(jnp.float32)
    labels = position_labels(patches.shape[0])
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    return loss, jnp.argmax(logits, -1) == labels, features

  def loss(self, model, batch, method_state, key, step, target=None):
    loss, correct, features = self._logits_and_loss(model, self.patches(key, batch["image"]), True)
    return loss, {"accuracy": jnp.mean(correct), **collapse_metrics(features["embedding"])}, method_state

  def heldout(self, model, inputs, key) -> dict:
    """{"pretext_accuracy": (pairs placed right, pairs)} over the 8 pairs of every held-out image
    (evaluation view, patch offsets from `key`); padding rows (all zeros) are not counted."""
    _, correct, _ = self._logits_and_loss(model, self.patches(key, inputs["image"], train=False), False)
    real = jnp.repeat(real_rows(inputs["image"]), len(NEIGHBOURS))
    return {"pretext_accuracy": (jnp.sum(correct * real), jnp.sum(real))}
