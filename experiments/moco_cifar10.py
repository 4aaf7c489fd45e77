"""MoCo v2+ on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/mocov2plus.yaml: projector 2048-256
(no batch norm), queue 32768, temperature 0.2, tau 0.99 -> 0.999, SGD lr 0.3,
weight decay 1e-4. `--set method.version=v3` gives MoCo v3 (predictor, no queue).
"""
from cifar10_common import VARIANTS, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "moco")
  c.method = ml_collections.ConfigDict({"name": "moco", "version": "v2", "temperature": 0.2,
                                        "queue_size": 32768, "base_tau": 0.99, "final_tau": 0.999,
                                        "loss_block_size": ml_collections.FieldReference(None, field_type=int)})
  c.projector.hidden_dim, c.projector.out_dim, c.projector.batch_norm = 2048, 256, False
  c.predictor = ml_collections.ConfigDict({"hidden_dim": 4096, "num_layers": 2, "enabled": True})
  c.optim.name, c.optim.lr, c.optim.weight_decay = "sgd", 0.3, 1e-4
  if arg == "cpu":
    c.projector.hidden_dim, c.projector.out_dim, c.predictor.hidden_dim = 512, 128, 512
    c.method.queue_size = 4096
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim, c.predictor.hidden_dim = 64, 32, 64
    c.method.queue_size = 128
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
