"""DINO on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/dino.yaml: ResNet-18, head
2048-256 with 4096 prototypes (last layer not weight-norm-fixed), tau
0.9995 -> 1, LARS lr 0.3, weight decay 1e-6, teacher temperature 0.04 ->
0.07 over 50 epochs, student 0.1, center momentum 0.9, last layer frozen
for 1 epoch, two 32x32 crops (solo-learn uses no local crops on CIFAR).
For a ViT: `--set model.name=vit_small` (patch 4 on 32x32).

cpu: 2 local crops of 16x16 (scale 0.14-0.4), a smaller head, and tau from
0.99 (0.9995 barely moves the teacher in 250 steps).
"""
from cifar10_common import VARIANTS, asymmetric_augment, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = asymmetric_augment(cifar10_config(arg, "dino"))
  epoch = 50000 // 256
  c.method = ml_collections.ConfigDict({
      "name": "dino", "base_tau": 0.9995, "final_tau": 1.0, "student_temperature": 0.1,
      "teacher_temperature": 0.07, "warmup_teacher_temperature": 0.04,
      "warmup_teacher_temperature_steps": 50 * epoch, "center_momentum": 0.9,
      "num_local_crops": 0, "local_crop_size": (16, 16), "local_crop_scale": (0.14, 0.4),
      "freeze_last_layer_steps": epoch})
  c.model.patch_size, c.model.image_size = 4, 32
  c.head = ml_collections.ConfigDict({"hidden_dim": 2048, "bottleneck_dim": 256, "num_prototypes": 4096,
                                      "num_layers": 3, "batch_norm": False, "norm_last_layer": False})
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.3, 1e-6
  if arg == "cpu":
    c.method.base_tau, c.method.num_local_crops = 0.99, 2
    c.method.warmup_teacher_temperature_steps, c.method.freeze_last_layer_steps = 25, 25
    c.head.hidden_dim, c.head.bottleneck_dim, c.head.num_prototypes = 512, 128, 1024
  elif arg == "smoke":
    c.method.num_local_crops, c.method.local_crop_size = 2, (8, 8)
    c.method.warmup_teacher_temperature_steps, c.method.freeze_last_layer_steps = 2, 1
    c.head.hidden_dim, c.head.bottleneck_dim, c.head.num_prototypes = 64, 32, 128
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
