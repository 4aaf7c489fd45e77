"""CMC on CIFAR-10, L against ab (variants and data: see cifar10_common.py).

The reference (HobbitLong/CMC, ImageNet) gives each view half an AlexNet or
ResNet, 128-d embeddings, temperature 0.07 with a memory bank of 16,384
negatives, SGD lr 0.03. Here each view gets `resnet_tiny` at half the table's
width (8: the two together have the features of one width-16 network, 128
after concatenation), a projector 256-64, in-batch negatives over the global
batch (`--set method.queue_size=4096` for a queue), temperature 0.1, and the
SimCLR row's LARS lr 1.0; one random crop (scale 0.2-1) and flip shared by
both views, no colour jitter or grayscale (the ab view is the colour).
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "cmc")
  c.model.in_channels = 1  # each view's encoder sets its own (L: 1, ab: 2)
  c.method = ml_collections.ConfigDict({"name": "cmc", "temperature": 0.1, "queue_size": 0})
  c.augment.mean, c.augment.std = (0.0,), (1.0,)  # one value per encoder channel; broadcast over RGB
  c.augment.crop_scale = (0.2, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.0
  c.projector.hidden_dim, c.projector.out_dim = 2048, 128
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.4, 1e-5
  if c.train.num_steps and c.train.batch_size == 256:  # cpu
    c.model.width = 8
    c.projector.hidden_dim, c.projector.out_dim, c.optim.lr = 256, 64, 1.0
  if c.train.batch_size == 32:  # smoke
    c.projector.hidden_dim, c.projector.out_dim = 64, 32
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
