"""Flax NNX modules. Every model returns `(output, features)`."""
from sslax.models.heads import MLPHead
from sslax.models.resnet import RESNET_NAMES, ResNet, resnet

__all__ = ["MLPHead", "RESNET_NAMES", "ResNet", "resnet"]
