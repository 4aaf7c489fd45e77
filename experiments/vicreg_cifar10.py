"""VICReg on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/vicreg.yaml: 3-layer expander
2048-2048, weights 25 / 25 / 1, LARS lr 0.3, weight decay 1e-4, crops of
scale 0.2-1, solarization p=0.1.
"""
from cifar10_common import VARIANTS, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "vicreg")
  c.method = ml_collections.ConfigDict({"name": "vicreg", "sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0})
  c.projector.hidden_dim, c.projector.out_dim, c.projector.num_layers = 2048, 2048, 3
  c.augment.crop_scale, c.augment.solarize_prob = (0.2, 1.0), 0.1
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.3, 1e-4
  if arg == "cpu":
    c.projector.hidden_dim, c.projector.out_dim = 1024, 1024
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim = 64, 64
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
