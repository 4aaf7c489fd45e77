"""Denoising autoencoder on CIFAR-10 (variants and data: see cifar10_common.py).

Vincent et al. 2008's objective on the shared conv encoder: masking noise
(each input element set to the mean with probability 0.5: at 32x32 a
lower rate is filled in from the neighbouring pixels, which teaches little,
as MAE found for patches), squared error to the clean image over every
pixel; random crop (scale 0.5-1) and flip, no colour jitter. AdamW lr 1e-3
at batch 256, weight decay 1e-4 (the paper trained by SGD on MNIST-sized
inputs; no reference recipe exists for CIFAR). `--set
method.corruption=gaussian` switches to additive noise of std
`method.noise_std`.
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def autoencoder_config(arg, corruption: str):
  """What the denoising autoencoder and the context encoder share."""
  c = cifar10_config(arg, "autoencoder")
  del c["projector"]  # a decoder, no projector
  c.method = ml_collections.ConfigDict({"name": "autoencoder", "corruption": corruption, "noise_std": 0.5,
                                        "mask_fraction": 0.5, "overlap": 0, "overlap_weight": 10.0})
  c.augment.crop_scale = (0.5, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.0
  c.optim.name, c.optim.lr, c.optim.weight_decay = "adamw", 1e-3, 1e-4
  # fine-tuning against the same network from scratch (`sslax finetune [--random_init]`), as MAE's
  # cpu recipe: 1,000 labels per class, 300 steps of 64 with the pretraining crop and flip
  c.finetune.per_group, c.finetune.train_mode, c.finetune.weight_decay = 1000, True, 0.05
  return c


def get_config(arg: str | None = None):
  return autoencoder_config(arg, "masking")
