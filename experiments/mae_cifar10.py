"""MAE on CIFAR-10 (variants and data: see cifar10_common.py).

full = the paper's recipe (He et al. 2022, appendix A.1; facebookresearch/mae
PRETRAIN.md) with ViT-B/16 and the paper's decoder (8 blocks x 512, 16
heads) on 224x224 inputs: mask ratio 0.75, normalized-pixel targets, AdamW
(betas 0.9, 0.95), base lr 1.5e-4 x batch / 256, weight decay 0.05, 40
warm-up epochs then cosine, 800 epochs at batch 4096, random resized crop
(scale 0.2-1) and flip only.

cpu = the shared budget (250 steps of 256, 1.3 epochs) with ViT-tiny,
patch 4 on 32x32 (64 patches, 16 visible) and a 2-block x 128 decoder; the
base lr is 1.5e-3 (10x the paper's: at 250 steps the paper's rate barely
moves a ViT, and its 40 warm-up epochs become the shared 25 steps).
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "mae")
  del c["projector"]  # a decoder (method.decoder_*), no projector
  c.method = ml_collections.ConfigDict({
      "name": "mae", "mask_ratio": 0.75, "norm_pix_loss": True, "feature": "patch_mean",
      "decoder_dim": 512, "decoder_depth": 8, "decoder_heads": 16})
  c.model.name, c.model.patch_size, c.model.image_size, c.model.pos_embed = "vit_base", 16, 224, "sincos"
  c.augment.crop_size, c.augment.crop_scale = (224, 224), (0.2, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob, c.augment.solarize_prob = 0.0, 0.0, 0.0
  c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.b1, c.optim.b2 = "adamw", 1.5e-4, 0.05, 0.9, 0.95
  # MAE's position tables are fixed (requires_grad=False): not trained, here or when fine-tuned
  c.optim.freeze = ("pos_embed",)
  c.finetune.freeze = ("pos_embed",)
  if arg in (None, "full"):
    c.train.batch_size, c.train.num_epochs = 4096, 800
    c.optim.warmup_steps = 40 * 50000 // 4096
  else:  # cpu and smoke: 32x32 CIFAR, ViT-tiny with patch 4
    c.model.name, c.model.patch_size, c.model.image_size = "vit_tiny", 4, 32
    c.augment.crop_size = (32, 32)
    c.method.decoder_dim, c.method.decoder_depth, c.method.decoder_heads = 128, 2, 4
    c.optim.lr = 1.5e-3
    # fine-tuning against the same network from scratch (`sslax finetune [--random_init]`): 1,000
    # labels per class, 300 steps of 64 with the pretraining crop and flip
    c.finetune.per_group, c.finetune.train_mode, c.finetune.weight_decay = 1000, True, 0.05
  if arg == "smoke":
    c.model.depth = 2
    c.method.decoder_dim, c.method.decoder_depth = 64, 1
  return c
