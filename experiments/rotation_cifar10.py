"""Rotation prediction on CIFAR-10 (variants and data: see cifar10_common.py).

full = the reference's CIFAR recipe (gidariss/FeatureLearningRotNet,
config/CIFAR10_RotNet_NIN4blocks.py) on our ResNet-18: SGD with Nesterov-free
momentum 0.9, lr 0.1 at batch 128 (scaled with the batch), weight decay
5e-4, random crop and flip only; a linear rotation head.
cpu = the shared budget (250 steps of 256 images, each at 4 rotations).
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "rotation")
  del c["projector"]  # no projector: a rotation head (`head`)
  c.head = ml_collections.ConfigDict({"num_layers": 1, "hidden_dim": 256})
  c.augment.crop_scale = (0.5, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.0
  c.optim.name, c.optim.lr, c.optim.momentum, c.optim.weight_decay = "sgd", 0.2, 0.9, 5e-4
  if c.train.batch_size == 32:  # smoke
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
