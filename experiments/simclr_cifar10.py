"""SimCLR on CIFAR-10.

Variants (`--config experiments/simclr_cifar10.py:<arg>`):
  smoke  tiny ResNet, a few steps on a small slice; used by tests.
  cpu    a budgeted run for 2 CPU cores (< 60 min): a narrow ResNet-18.
  full   solo-learn's recipe (scripts/pretrain/cifar/simclr.yaml): ResNet-18,
         CIFAR stem, batch 256, 1000 epochs, LARS lr 0.4 * batch/256,
         weight decay 1e-5, 10 warm-up epochs, temperature 0.2,
         projector 2048-256.

By default CIFAR-10 comes from TFDS by name. For a local copy in the
image-folder layout (e.g. ../shared/data/cifar10/{train,test}.tar.gz) pass
`--set data.source=image_folder --set data.paths.train=... --set data.paths.test=...`,
which the `:cpu` and `:smoke` variants do (paths relative to the repository root).
"""
from sslax.config import base_config

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def get_config(arg: str | None = None):
  arg = arg or "full"
  c = base_config()
  c.method.temperature = 0.2
  c.model.name, c.model.cifar_stem, c.model.in_channels = "resnet18", True, 3
  c.augment.crop_size, c.augment.crop_scale = (32, 32), (0.08, 1.0)
  c.augment.mean, c.augment.std = CIFAR_MEAN, CIFAR_STD
  c.data.paths = {"train": "../shared/data/cifar10/train.tar.gz", "test": "../shared/data/cifar10/test.tar.gz"}
  if arg == "full":
    c.data.source = "tfds"
    c.train.batch_size, c.train.num_epochs = 256, 1000
    c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.4, 1e-5
    c.optim.warmup_steps = 10 * 50000 // 256
    c.projector.hidden_dim, c.projector.out_dim = 2048, 256
    c.train.knn_every, c.train.checkpoint_every = 5 * 50000 // 256, 2000
  elif arg == "cpu":
    # Sized for 2 CPU cores and < 60 minutes in all (XLA:CPU trains this at about
    # 100 image pairs/s): a 4-stage, one-block-per-stage ResNet of width 16,
    # 1100 steps of batch 256 (5.6 epochs).
    c.data.source = "image_folder"
    c.model.name, c.model.width = "resnet_tiny", 16
    c.projector.hidden_dim, c.projector.out_dim = 512, 128
    c.train.batch_size, c.train.num_steps = 256, 1100
    c.train.log_every, c.train.checkpoint_every, c.train.knn_every = 25, 200, 275
    c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.warmup_steps = "lars", 1.0, 1e-5, 60
    c.eval.monitor_max_train = 5000
  elif arg == "smoke":
    c.data.source = "image_folder"
    c.model.name = "resnet_tiny"
    c.projector.hidden_dim, c.projector.out_dim = 64, 32
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 32, 4, 2, 2
    c.optim.name, c.optim.lr = "adamw", 1e-3
    c.eval.knn_k, c.eval.linear_probe = 10, False
  else:
    raise ValueError(f"config arg: expected one of ['cpu', 'full', 'smoke'], got {arg!r}")
  return c
