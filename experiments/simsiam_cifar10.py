"""SimSiam on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/simsiam.yaml: 3-layer projector
2048-2048 with batch norm on the output, predictor 512, SGD lr 0.5,
weight decay 1e-5.
"""
from cifar10_common import VARIANTS, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "simsiam")
  c.method = ml_collections.ConfigDict({"name": "simsiam"})
  c.projector = ml_collections.ConfigDict({"hidden_dim": 2048, "out_dim": 2048, "num_layers": 3,
                                           "batch_norm": True, "last_batch_norm": True})
  c.predictor = ml_collections.ConfigDict({"hidden_dim": 512, "num_layers": 2, "enabled": True})
  c.optim.name, c.optim.lr, c.optim.weight_decay = "sgd", 0.5, 1e-5
  if arg == "cpu":
    c.projector.hidden_dim, c.projector.out_dim, c.predictor.hidden_dim = 1024, 1024, 256
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim, c.predictor.hidden_dim = 64, 64, 16
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
