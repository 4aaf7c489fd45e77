"""Barlow Twins on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/barlow.yaml: 3-layer projector
2048-2048, lambda 0.0051, loss scaled by 0.1, LARS lr 0.3, weight decay
1e-4, asymmetric augmentations.
"""
from cifar10_common import VARIANTS, asymmetric_augment, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = asymmetric_augment(cifar10_config(arg, "barlow_twins"))
  c.method = ml_collections.ConfigDict({"name": "barlow_twins", "lambd": 0.0051, "scale_loss": 0.1})
  c.projector.hidden_dim, c.projector.out_dim, c.projector.num_layers = 2048, 2048, 3
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.3, 1e-4
  if arg == "cpu":
    c.projector.hidden_dim, c.projector.out_dim = 1024, 1024
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim = 64, 64
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
