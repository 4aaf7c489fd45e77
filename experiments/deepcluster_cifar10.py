"""DeepCluster on CIFAR-10 (variants and data: see cifar10_common.py).

full = the reference's recipe (facebookresearch/deepcluster `main.py`) on our ResNet-18: k-means
every epoch on PCA-256-whitened, l2-normalized features of the whole training set, SGD momentum
0.9, lr 0.05, weight decay 1e-5, random resized crop and flip, and 100 clusters (10x the classes:
the paper over-clusters ImageNet 10x, 10,000 for 1,000 classes).
cpu = the shared budget (250 steps of 256 images): the clusters recomputed every 65 steps (a third
of an epoch, so that 1.3 epochs see four clusterings: steps 0, 65, 130, 195), PCA to 64 of the
encoder's 128 features, 50 Lloyd steps.
"""
import ml_collections

import cifar10_common
from cifar10_common import cifar10_config

VARIANTS = cifar10_common.VARIANTS


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "deepcluster")
  del c["projector"]  # no projector: the top layer over the clusters
  c.method = ml_collections.ConfigDict({
      "name": "deepcluster", "num_clusters": 100, "pca_dim": 256, "refresh_every": 50000 // 256,
      "kmeans_iters": 50, "max_images": 50000})
  c.augment.crop_scale = (0.2, 1.0)
  c.optim.name, c.optim.lr, c.optim.momentum, c.optim.weight_decay = "sgd", 0.05, 0.9, 1e-5
  if arg == "cpu":
    c.method.refresh_every, c.method.pca_dim = 65, 64
  elif arg == "smoke":
    c.method.num_clusters, c.method.pca_dim, c.method.refresh_every = 10, 16, 2
    c.method.kmeans_iters, c.method.max_images = 5, 2000
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
