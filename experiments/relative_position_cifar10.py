"""Relative patch position on CIFAR-10 (variants and data: see cifar10_common.py).

The reference recipe (mmselfsup's `relative-loc` on ImageNet): 255 px crops cut
3 x 3 into 85 px cells with 64 px patches (random offsets inside each cell),
grayscale with p 0.66, per-patch normalization, all 8 pairs of every image, a
fusion head of 4096 units, SGD lr 0.2 with momentum 0.9 and weight decay 1e-4.
At 32x32: cells of 10 px and patches of 8 px (the same patch / cell ratio, 0.8;
the 2 px left over lie on the image border), the image cropped (scale 0.5-1)
and flipped first, a fusion head of 512 (narrowed for 2 cores), SGD lr 0.1,
weight decay 5e-4.
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "relative_position")
  del c["projector"]  # no projector: the pair classifier (`head`)
  c.method = ml_collections.ConfigDict({"name": "relative_position", "patch_size": 8})
  c.head = ml_collections.ConfigDict({"hidden_dim": 4096, "num_layers": 2})
  c.augment.crop_scale = (0.5, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.66
  c.optim.name, c.optim.lr, c.optim.momentum, c.optim.weight_decay = "sgd", 0.1, 0.9, 5e-4
  if c.train.batch_size == 256:  # cpu
    c.head.hidden_dim = 512
  if c.train.batch_size == 32:  # smoke
    c.head.hidden_dim = 64
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
