"""Context encoder (inpainting) on CIFAR-10 (variants and data: see cifar10_common.py).

Pathak et al. 2016's centre-region task scaled from 128x128 to 32x32: the
central 16x16 square removed (filled with the mean) except a 1-pixel band
along its border (the reference's overlapPred = 4 at 128), the whole 16x16
square predicted, its squared error weighted 10x in the band, reconstruction
term only (no adversarial term: `sslax/methods/autoencoder.py` says why).
The reference trains by Adam at lr 2e-4, beta1 0.5; at the 250-step `cpu`
budget AdamW at lr 1e-3, beta1 0.9 as the denoising autoencoder.
"""
import cifar10_common
from denoising_ae_cifar10 import autoencoder_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = autoencoder_config(arg, "center")
  c.method.overlap = 1
  return c
