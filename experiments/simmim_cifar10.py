"""SimMIM on CIFAR-10 (variants and data: see cifar10_common.py).

full = the paper's ViT-B/16 recipe (Xie et al. 2022, sec. 4.1 and appendix;
microsoft/SimMIM `configs/vit_base__800ep`): 224x224 inputs, 32 px mask
cells over 16 px patches, mask ratio 0.6, random resized crop (scale
0.67-1) and flip, AdamW (betas 0.9, 0.999) base lr 8e-4 x batch / 512
(here scaled per 256: 4e-4), weight decay 0.05, 10 warm-up epochs then
cosine, 800 epochs at batch 2048.

cpu = the shared budget (250 steps of 256, 1.3 epochs) with ViT-tiny,
patch 4 on 32x32 and 8 px mask cells (2x2 patches, the paper's 2:1 ratio
of cell to patch); base lr 2e-3 (5x the paper's, for 250 steps).
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "simmim")
  del c["projector"]  # a linear pixel head, no projector
  c.method = ml_collections.ConfigDict({"name": "simmim", "mask_ratio": 0.6, "mask_patch_size": 32,
                                        "feature": "patch_mean"})
  # fixed sin-cos positions (frozen), as MAE's: the reference's ViT has relative position bias instead,
  # which our ViT lacks; with them, MAE's and SimMIM's encoders are the same network at init
  c.model.name, c.model.patch_size, c.model.image_size, c.model.pos_embed = "vit_base", 16, 224, "sincos"
  c.optim.freeze = c.finetune.freeze = ("pos_embed",)
  c.augment.crop_size, c.augment.crop_scale = (224, 224), (0.67, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob, c.augment.solarize_prob = 0.0, 0.0, 0.0
  c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.b1, c.optim.b2 = "adamw", 4e-4, 0.05, 0.9, 0.999
  if arg in (None, "full"):
    c.train.batch_size, c.train.num_epochs = 2048, 800
    c.optim.warmup_steps = 10 * 50000 // 2048
  else:  # cpu and smoke: 32x32 CIFAR, ViT-tiny with patch 4
    c.model.name, c.model.patch_size, c.model.image_size = "vit_tiny", 4, 32
    c.augment.crop_size, c.method.mask_patch_size = (32, 32), 8
    c.optim.lr = 2e-3
    # fine-tuning against the same network from scratch (`sslax finetune [--random_init]`): 1,000
    # labels per class, 300 steps of 64 with the pretraining crop and flip
    c.finetune.per_group, c.finetune.train_mode, c.finetune.weight_decay = 1000, True, 0.05
  if arg == "smoke":
    c.model.depth = 2
  return c
