"""ResNet encoders in Flax NNX (He et al., "Deep Residual Learning", CVPR 2016).

`cifar_stem=True` replaces the 7x7/2 convolution and max-pool with one 3x3/1
convolution, as solo-learn and the SimCLR paper do for 32x32 inputs.
Every model returns `(output, features)`: the pooled representation and a
dict of named intermediate activations.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

_BN_MOMENTUM = 0.9  # torch's momentum=0.1 in Flax's convention


def _conv(cin, cout, k, stride, rngs, dtype):
  # k // 2 on every side, as torchvision's ResNet: XLA's "SAME" puts a strided convolution's odd
  # padding at the end, which samples other pixels and makes the weights mean something else in PyTorch
  return nnx.Conv(cin, cout, (k, k), strides=stride, padding=((k // 2, k // 2),) * 2,
                  use_bias=False, dtype=dtype,
                  kernel_init=nnx.initializers.variance_scaling(2.0, "fan_out", "normal"), rngs=rngs)


def _bn(c, rngs, zero_init=False):
  return nnx.BatchNorm(c, momentum=_BN_MOMENTUM, epsilon=1e-5, rngs=rngs,
                       scale_init=nnx.initializers.zeros if zero_init else nnx.initializers.ones)


class Projection(nnx.Module):
  """The 1x1 convolution + batch norm on a residual shortcut whose shape changes."""

  def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs, dtype=None):
    self.conv = _conv(cin, cout, 1, stride, rngs, dtype)
    self.bn = _bn(cout, rngs)

  def __call__(self, x, train: bool):
    return self.bn(self.conv(x), use_running_average=not train)


class BasicBlock(nnx.Module):
  expansion = 1

  def __init__(self, cin: int, width: int, stride: int, *, rngs: nnx.Rngs, dtype=None):
    cout = width * self.expansion
    self.conv1 = _conv(cin, width, 3, stride, rngs, dtype)
    self.bn1 = _bn(width, rngs)
    self.conv2 = _conv(width, cout, 3, 1, rngs, dtype)
    self.bn2 = _bn(cout, rngs)
    self.shortcut = Projection(cin, cout, stride, rngs=rngs, dtype=dtype) if stride != 1 or cin != cout else None

  def __call__(self, x, train: bool):
    y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
    y = self.bn2(self.conv2(y), use_running_average=not train)
    if self.shortcut is not None:
      x = self.shortcut(x, train)
    return jax.nn.relu(x + y)


class Bottleneck(nnx.Module):
  expansion = 4

  def __init__(self, cin: int, width: int, stride: int, *, rngs: nnx.Rngs, dtype=None):
    cout = width * self.expansion
    self.conv1 = _conv(cin, width, 1, 1, rngs, dtype)
    self.bn1 = _bn(width, rngs)
    self.conv2 = _conv(width, width, 3, stride, rngs, dtype)
    self.bn2 = _bn(width, rngs)
    self.conv3 = _conv(width, cout, 1, 1, rngs, dtype)
    self.bn3 = _bn(cout, rngs)
    self.shortcut = Projection(cin, cout, stride, rngs=rngs, dtype=dtype) if stride != 1 or cin != cout else None

  def __call__(self, x, train: bool):
    y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
    y = jax.nn.relu(self.bn2(self.conv2(y), use_running_average=not train))
    y = self.bn3(self.conv3(y), use_running_average=not train)
    if self.shortcut is not None:
      x = self.shortcut(x, train)
    return jax.nn.relu(x + y)


class ResNet(nnx.Module):
  """A ResNet trunk without the classifier: images [B, H, W, C] -> [B, num_features]."""

  def __init__(self, stage_sizes: Sequence[int], block: str = "basic", *, in_channels: int = 3,
               width: int = 64, cifar_stem: bool = False, rngs: nnx.Rngs, dtype=None):
    block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
    self.cifar_stem = cifar_stem
    if cifar_stem:
      self.stem = _conv(in_channels, width, 3, 1, rngs, dtype)
    else:
      self.stem = _conv(in_channels, width, 7, 2, rngs, dtype)
    self.stem_bn = _bn(width, rngs)
    cin = width
    stages = []
    for i, n in enumerate(stage_sizes):
      blocks = []
      for j in range(n):
        stride = 2 if (i > 0 and j == 0) else 1
        blocks.append(block_cls(cin, width * 2**i, stride, rngs=rngs, dtype=dtype))
        cin = width * 2**i * block_cls.expansion
      stages.append(nnx.List(blocks))
    self.stages = nnx.List(stages)
    self.num_features = cin

  def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Args: x [B, H, W, C] float. Returns ([B, num_features], features dict)."""
    features = {}
    x = jax.nn.relu(self.stem_bn(self.stem(x), use_running_average=not train))
    if not self.cifar_stem:
      x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))  # torchvision's padding=1
    features["stem"] = x
    for i, stage in enumerate(self.stages):
      for block in stage:
        x = block(x, train)
      features[f"stage{i + 1}"] = x
    pooled = jnp.mean(x, axis=(1, 2)).astype(jnp.float32)
    features["pooled"] = pooled
    return pooled, features


_RESNETS = {
    "resnet_tiny": dict(stage_sizes=(1, 1, 1, 1), block="basic", width=16),
    "resnet18": dict(stage_sizes=(2, 2, 2, 2), block="basic"),
    "resnet34": dict(stage_sizes=(3, 4, 6, 3), block="basic"),
    "resnet50": dict(stage_sizes=(3, 4, 6, 3), block="bottleneck"),
}


def resnet(name: str, *, rngs: nnx.Rngs, in_channels: int = 3, cifar_stem: bool = False,
           width: int | None = None, dtype=None) -> ResNet:
  """Builds `resnet_tiny`, `resnet18`, `resnet34` or `resnet50` (width overrides the base width)."""
  if name not in _RESNETS:
    raise ValueError(f"model.name: expected one of {sorted(_RESNETS)}, got {name!r}")
  kw = dict(_RESNETS[name])
  if width is not None:
    kw["width"] = width
  return ResNet(**kw, in_channels=in_channels, cifar_stem=cifar_stem, rngs=rngs, dtype=dtype)


RESNET_NAMES = tuple(_RESNETS)
