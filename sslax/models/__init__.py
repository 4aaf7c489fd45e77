"""Flax NNX modules. Every model returns `(output, features)`."""
from flax import nnx

from sslax.models.heads import DINOHead, MLPHead, unit_prototypes
from sslax.models.resnet import RESNET_NAMES, ResNet, resnet
from sslax.models.vit import VIT_NAMES, ViT, vit


def build_encoder(model_config, rngs: nnx.Rngs):
  """The backbone named by `model.name` (a ResNet or a ViT); it has `.num_features`."""
  name = model_config.name
  if name in RESNET_NAMES:
    return resnet(name, in_channels=model_config.in_channels, cifar_stem=model_config.cifar_stem,
                  width=model_config.get("width"), rngs=rngs)
  if name in VIT_NAMES:
    return vit(name, in_channels=model_config.in_channels, image_size=model_config.get("image_size", 32),
               patch_size=model_config.get("patch_size", 4), depth=model_config.get("depth"),
               pos_embed=model_config.get("pos_embed", "learned"), rngs=rngs)
  raise ValueError(f"model.name: expected one of {sorted(RESNET_NAMES + VIT_NAMES)}, got {name!r}")


__all__ = ["DINOHead", "MLPHead", "unit_prototypes", "RESNET_NAMES", "ResNet", "VIT_NAMES", "ViT", "build_encoder", "resnet", "vit"]
