"""PixelCNN on CIFAR-10 (variants and data: see cifar10_common.py).

full = the gated PixelCNN of van den Oord et al. 2016b on CIFAR-10 as the
papers train it: 15 gated blocks of 128 features after a 7x7 mask-A block,
a 1024-wide head, 256-way softmax per sub-pixel, Adam (lr 1e-3), batch 64,
no augmentation; the papers report 3.03 (gated PixelCNN) / 3.00 (PixelRNN)
and PixelCNN++ 2.92 bits/dim after hundreds of epochs on GPUs.

cpu = the 2-core budget: 5 gated blocks of 48 features (one 7x7 mask-A
block, then 3x3), a 192-wide head, 400 steps of 64 (0.5 epochs), Adam at
1e-3 with 25 warm-up steps and a cosine decay; 8 samples drawn at the end
(3,072 network evaluations each; experiments/pixelcnn_fashion_mnist.py
trains 600 steps and draws 16).
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config
from sslax.config import pretrained_fields

VARIANTS = cifar10_common.VARIANTS


def pixelcnn_config(c, arg: str | None):
  """Turns a `cifar10_config` into PixelCNN's: no augmentation, no projector, the gated network."""
  del c["projector"], c["augment"], c["augment_view2"]  # the likelihood of the data's own pixels
  c.method = ml_collections.ConfigDict({"name": "pixelcnn", "temperature": 1.0, "num_samples": 16})
  channels = c.model.in_channels
  c.model = ml_collections.ConfigDict({
      "name": "pixelcnn", "in_channels": channels, "width": 128, "depth": 15, "kernel_size": 3,
      "first_kernel_size": 7, "head_dim": 1024, **pretrained_fields()})
  c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.scale_lr_with_batch = "adamw", 1e-3, 0.0, False
  c.optim.grad_clip_norm = 1.0
  c.eval.knn_k = 20
  if arg in (None, "full"):
    c.train.batch_size, c.train.num_epochs = 64, 300
    c.optim.warmup_steps = 0
  elif arg == "cpu":
    c.model.width, c.model.depth, c.model.head_dim = 48, 5, 192
    c.train.batch_size, c.train.num_steps = 64, 400
    c.method.num_samples = 8
    c.train.log_every, c.train.checkpoint_every = 50, 200
    c.optim.warmup_steps = 25
  else:  # smoke
    c.model.width, c.model.depth, c.model.head_dim = 12, 1, 24
    c.method.num_samples = 8
  return c


def get_config(arg: str | None = None):
  return pixelcnn_config(cifar10_config(arg, "pixelcnn"), arg)
