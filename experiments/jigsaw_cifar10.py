"""Jigsaw puzzles on CIFAR-10 (variants and data: see cifar10_common.py).

The reference (bbrattoli/JigsawPuzzlePytorch) trains on ImageNet: 225 px crops
cut 3x3 into 75 px cells with 64 px tiles, 1000 permutations, per-tile
normalization and colour jitter, SGD lr 0.01 with momentum 0.9 and weight
decay 5e-4 at batch 256. At 32x32: a 2x2 grid of 16 px cells, 12 px tiles
(the same tile / cell ratio, 0.8), all 24 permutations; the image itself is
cropped (scale 0.5-1) and flipped, the tiles jittered by up to 0.1 (in
normalized units) per channel and grayscale with p 0.3 (the paper's cue
against chromatic aberration). SGD lr 0.1 (a 4x larger batch of tiles than
the reference's per image, and 250 steps), momentum 0.9, weight decay 5e-4.
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "jigsaw")
  del c["projector"]  # no projector: the per-tile layer and the permutation classifier (`head`)
  c.method = ml_collections.ConfigDict({"name": "jigsaw", "grid": 2, "tile_size": 12, "num_permutations": 24,
                                        "permutation_seed": 0, "channel_jitter": 0.1})
  c.head = ml_collections.ConfigDict({"tile_dim": 256, "hidden_dim": 512})
  c.augment.crop_scale = (0.5, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.3
  c.optim.name, c.optim.lr, c.optim.momentum, c.optim.weight_decay = "sgd", 0.1, 0.9, 5e-4
  if c.train.batch_size == 32:  # smoke
    c.method.tile_size = 12
    c.head.tile_dim, c.head.hidden_dim = 32, 64
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
