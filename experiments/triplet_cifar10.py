"""Triplet loss on CIFAR-10, self-supervised: the two views of an image are anchor and positive
(variants and data: see cifar10_common.py).

FaceNet's loss (squared distances of l2-normalized embeddings, margin 0.2,
semi-hard negatives) on the SimCLR network and views: projector 512-128 at
the `cpu` budget (2048-128 in `full`), LARS lr 1.0 as SimCLR's cpu row, weight
decay 1e-5. `--set method.mining=hard` mines the batch-hard triplets instead.
"""
import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "triplet")
  c.method.margin, c.method.mining, c.method.label_key = 0.2, "semi_hard", ""
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.4, 1e-5
  c.projector.hidden_dim, c.projector.out_dim = 2048, 128
  if c.train.num_steps and c.train.batch_size == 256:  # cpu
    c.projector.hidden_dim, c.optim.lr = 512, 1.0
  if c.train.batch_size == 32:  # smoke
    c.projector.hidden_dim, c.projector.out_dim = 64, 32
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
