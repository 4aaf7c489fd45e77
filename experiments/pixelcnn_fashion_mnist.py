"""PixelCNN on Fashion-MNIST (28x28 grayscale; ../shared/data/fashion_mnist, image-folder layout,
read through the same TFDS builder and grain as CIFAR-10).

Variants as experiments/pixelcnn_cifar10.py (`cpu`: 5 gated blocks of 48), with one colour group,
the 60,000 / 10,000 split, and 600 steps of 64 with 16 samples at `cpu`.
"""
import cifar10_common
from pixelcnn_cifar10 import cifar10_config, pixelcnn_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "pixelcnn")
  c.model.in_channels = 1
  c.data.name = "fashion_mnist"
  c.data.paths = {"train": "../shared/data/fashion_mnist/train.tar.gz",
                  "test": "../shared/data/fashion_mnist/test.tar.gz"}
  if c.data.source == "tfds":  # full: TFDS's own fashion_mnist
    c.data.paths = {}
  c = pixelcnn_config(c, arg)
  if arg == "cpu":  # 28x28x1: a third of CIFAR's sub-pixels, so more steps and samples in the budget
    c.train.num_steps, c.method.num_samples = 600, 16
  return c
