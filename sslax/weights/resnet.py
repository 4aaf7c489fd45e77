"""sslax `ResNet` <-> torchvision `resnet18/34/50` state dicts (He et al. 2016).

torchvision names: `conv1`, `bn1` (the stem), `layer<s>.<b>.conv1/bn1/conv2/bn2[/conv3/bn3]`,
`layer<s>.<b>.downsample.0` (1x1 conv) / `.1` (batch norm), and `fc` (not part of the encoder:
set `model.fc = torch.nn.Identity()` before loading). The CIFAR stem is solo-learn's: `conv1` a
3x3 stride-1 convolution and no max-pool (`model.maxpool = torch.nn.Identity()`). Batch norm
running mean and variance are copied as they are; torch's `num_batches_tracked` is written as 0
and ignored on the way in. Padding is torchvision's (k // 2 on every side), as `sslax.models.resnet`.
"""
from __future__ import annotations

import numpy as np

from sslax.models.resnet import Bottleneck, ResNet
from sslax.weights.layout import Tensor, norm

LAYOUT = "torchvision"
_TORCHVISION = {("basic", (2, 2, 2, 2)): "resnet18", ("basic", (3, 4, 6, 3)): "resnet34",
                ("bottleneck", (3, 4, 6, 3)): "resnet50"}


def _block_kind(model: ResNet) -> str:
  return "bottleneck" if isinstance(model.stages[0][0], Bottleneck) else "basic"


def tensors(model: ResNet, heads: bool = False) -> list[Tensor]:
  del heads  # torchvision's only head is the supervised `fc`
  out = [Tensor(model.stem.kernel, "conv1.weight", "conv"), *norm(model.stem_bn, "bn1", running=True)]
  for s, stage in enumerate(model.stages):
    for b, block in enumerate(stage):
      p = f"layer{s + 1}.{b}"
      n = 3 if isinstance(block, Bottleneck) else 2
      for i in range(1, n + 1):
        out.append(Tensor(getattr(block, f"conv{i}").kernel, f"{p}.conv{i}.weight", "conv"))
        out += norm(getattr(block, f"bn{i}"), f"{p}.bn{i}", running=True)
      if block.shortcut is not None:
        out.append(Tensor(block.shortcut.conv.kernel, f"{p}.downsample.0.weight", "conv"))
        out += norm(block.shortcut.bn, f"{p}.downsample.1", running=True)
  return out


def extra_tensors(model: ResNet) -> dict[str, np.ndarray]:
  """torch's `num_batches_tracked` per batch norm (a strict `load_state_dict` wants them)."""
  names = [t.names[0] for t in tensors(model) if t.names[0].endswith(".running_mean")]
  return {n.replace(".running_mean", ".num_batches_tracked"): np.zeros((), np.int64) for n in names}


def config(model: ResNet, heads: bool = False) -> dict:
  del heads  # the layout has no pretraining heads
  stages = tuple(len(s) for s in model.stages)
  kind = _block_kind(model)
  width = model.stem.out_features
  return {"layout": LAYOUT, "architecture": _TORCHVISION.get((kind, stages)) if width == 64 else None,
          "block": kind, "layers": list(stages), "width": width, "cifar_stem": bool(model.cifar_stem),
          "in_channels": model.stem.in_features, "num_features": model.num_features}


def check(model: ResNet, state: dict[str, np.ndarray], source: str) -> None:
  """The stem and depth before any tensor: a CIFAR-stem checkpoint into an ImageNet-stem model
  (or the reverse) has a conv1 of another size, and a missing block another depth."""
  stem = state.get("conv1.weight")
  if stem is not None:
    k = stem.shape[-1]
    want = 3 if model.cifar_stem else 7
    if k != want:
      raise ValueError(f"model.cifar_stem: {source} has a {k}x{k} conv1 ({'CIFAR' if k == 3 else 'ImageNet'} "
                       f"stem), the model {'a CIFAR' if model.cifar_stem else 'an ImageNet'} stem ({want}x{want}); "
                       f"set model.cifar_stem={k == 3}")
  for s, stage in enumerate(model.stages):
    blocks = len({k.split(".")[1] for k in state if k.startswith(f"layer{s + 1}.")})
    if blocks and blocks != len(stage):
      raise ValueError(f"model.name: {source} has {blocks} blocks in layer{s + 1}, the model {len(stage)}")
