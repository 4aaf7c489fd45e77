"""Settings every `experiments/<method>_cifar10.py` shares: data, backbone, augmentation, budgets.

Budgets (the `arg` of `get_config`):
  smoke  tiny ResNet, 4 steps of batch 32; used by tests.
  cpu    the budget every method gets on 2 CPU cores, so that their rows in
         experiments/RESULTS.md compare: a 4-stage, one-block-per-stage
         ResNet of width 16 (`resnet_tiny`), 250 steps of batch 256
         (1.3 epochs), full train / test splits for the probes.
  full   the method's solo-learn CIFAR-10 recipe: ResNet-18 with the CIFAR
         stem, batch 256, 1000 epochs (each method file fills in the rest).

CIFAR-10 comes from TFDS by name in `full`; `cpu` and `smoke` read the local
copy in the image-folder layout (../shared/data/cifar10/{train,test}.tar.gz,
relative to the repository root) through the same TFDS builder and grain.
"""
from sslax.config import base_config

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CPU_STEPS = 250
VARIANTS = ("cpu", "full", "smoke")


def cifar10_config(arg: str | None, method: str):
  """Base config of `method` on CIFAR-10 for budget `arg` (None means "full")."""
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = base_config()
  c.method.name = method
  c.model.name, c.model.cifar_stem, c.model.in_channels = "resnet18", True, 3
  c.augment.crop_size, c.augment.crop_scale = (32, 32), (0.08, 1.0)
  c.augment.mean, c.augment.std = CIFAR_MEAN, CIFAR_STD
  c.data.paths = {"train": "../shared/data/cifar10/train.tar.gz", "test": "../shared/data/cifar10/test.tar.gz"}
  if arg == "full":
    c.data.source = "tfds"
    c.train.batch_size, c.train.num_epochs = 256, 1000
    c.optim.warmup_steps = 10 * 50000 // 256
    c.train.knn_every, c.train.checkpoint_every = 5 * 50000 // 256, 2000
  elif arg == "cpu":
    c.data.source = "image_folder"
    c.model.name, c.model.width = "resnet_tiny", 16
    c.train.batch_size, c.train.num_steps = 256, CPU_STEPS
    c.train.log_every, c.train.checkpoint_every, c.train.knn_every = 25, 125, 0
    c.optim.warmup_steps = 25
  else:
    c.data.source = "image_folder"
    c.model.name = "resnet_tiny"
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 32, 4, 2, 2
    c.optim.name, c.optim.lr, c.optim.weight_decay = "adamw", 1e-3, 1e-4
    c.eval.knn_k, c.eval.linear_probe = 10, False
  return c


def asymmetric_augment(c):
  """BYOL's asymmetric views as solo-learn's CIFAR `asymmetric.yaml`: solarize only view 2 (p=0.2);
  no blur at 32x32."""
  c.augment.solarize_prob = 0.0
  c.augment_view2 = {"solarize_prob": 0.2}
  return c
