"""BYOL on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/byol.yaml: projector 4096-256,
predictor 4096, LARS lr 1.0, weight decay 1e-5, tau 0.99 -> 1.0 (cosine),
asymmetric augmentations.
"""
from cifar10_common import VARIANTS, asymmetric_augment, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = asymmetric_augment(cifar10_config(arg, "byol"))
  c.method = ml_collections.ConfigDict({"name": "byol", "base_tau": 0.99, "final_tau": 1.0})
  c.projector.hidden_dim, c.projector.out_dim = 4096, 256
  c.predictor = ml_collections.ConfigDict({"hidden_dim": 4096, "num_layers": 2, "enabled": True})
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 1.0, 1e-5
  if arg == "cpu":
    c.projector.hidden_dim, c.projector.out_dim, c.predictor.hidden_dim = 1024, 128, 1024
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim, c.predictor.hidden_dim = 64, 32, 64
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
