"""Colorization on CIFAR-10 (variants and data: see cifar10_common.py).

The reference (richzhang/colorization) trains a VGG-style network on ImageNet
at 256 px with 313 ab bins of side 10, soft targets over 5 neighbours (sigma
5), rebalancing lambda 0.5 and Adam. At 32x32: the L-only `resnet_tiny`, the
head on stage 3 (8x8, the paper's 1/4 output stride), bins of side 20 (76
in-gamut bins: at 8x8 outputs, area-averaged over 4x4 pixels, the colours are
mean colours, and 261 bins of side 10 would leave most of them unseen in 250
steps), the prior counted over the first 10,000 training images, random crop
(scale 0.5-1) and flip (no colour jitter or grayscale: the colours are the
targets), AdamW lr 1e-3, weight decay 1e-4.
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "colorization")
  del c["projector"]  # a colour head (`method.hidden_dim`), no projector
  c.model.in_channels = 1
  c.method = ml_collections.ConfigDict({"name": "colorization", "stage": "stage3", "bin_size": 20.0,
                                        "rebalance": 0.5, "prior_images": 10000, "hidden_dim": 128})
  c.augment.mean, c.augment.std = (0.0,), (1.0,)  # one value per encoder channel; broadcast over RGB
  c.augment.crop_scale = (0.5, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.0
  c.optim.name, c.optim.lr, c.optim.weight_decay = "adamw", 1e-3, 1e-4
  if c.train.batch_size == 32:  # smoke
    c.method.hidden_dim, c.method.prior_images = 32, 500
  return c
