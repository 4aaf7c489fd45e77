"""SimCLR on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/simclr.yaml: LARS lr 0.4 * batch/256,
weight decay 1e-5, temperature 0.2, projector 2048-256.
cpu_long = the foundation issue's longer CPU run (1100 steps, 5.6 epochs).
"""
import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = (*cifar10_common.VARIANTS, "cpu_long")


def get_config(arg: str | None = None):
  long = arg == "cpu_long"
  c = cifar10_config("cpu" if long else arg, "simclr")
  c.method.temperature = 0.2
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.4, 1e-5
  c.projector.hidden_dim, c.projector.out_dim = 2048, 256
  if c.train.num_steps and c.train.batch_size == 256:  # cpu, cpu_long
    c.projector.hidden_dim, c.projector.out_dim = 512, 128
    c.optim.lr = 1.0
  if long:
    c.train.num_steps, c.optim.warmup_steps = 1100, 60
    c.train.checkpoint_every, c.train.knn_every = 200, 275
    c.eval.monitor_max_train = 5000
  if c.train.batch_size == 32:  # smoke
    c.projector.hidden_dim, c.projector.out_dim = 64, 32
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
