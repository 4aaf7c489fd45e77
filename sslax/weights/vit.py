"""sslax `ViT` <-> timm `VisionTransformer` state dicts (DINO's `vision_transformer.py` uses the
same names, so DINO's released backbones load too).

timm names: `patch_embed.proj` (the patch convolution), `cls_token`, `pos_embed` [1, 1 + N, D],
`blocks.<i>.norm1/attn.qkv/attn.proj/norm2/mlp.fc1/mlp.fc2`, `norm`; `head` is the supervised
classifier (absent with `num_classes=0`). timm's qkv weight packs q | k | v, each head-major, as
ours; layer norm eps 1e-6 and exact GELU in both.
"""
from __future__ import annotations

import numpy as np

from sslax.models.vit import ViT
from sslax.weights.layout import Tensor, linear, norm

LAYOUT = "timm"


def tensors(model: ViT, heads: bool = False) -> list[Tensor]:
  del heads
  out = [Tensor(model.patch_embed.kernel, "patch_embed.proj.weight", "conv"),
         Tensor(model.patch_embed.bias, "patch_embed.proj.bias"),
         Tensor(model.cls_token, "cls_token"), Tensor(model.pos_embed, "pos_embed")]
  for i, block in enumerate(model.blocks):
    p = f"blocks.{i}"
    out += norm(block.norm1, f"{p}.norm1") + linear(block.attn.qkv, f"{p}.attn.qkv")
    out += linear(block.attn.proj, f"{p}.attn.proj") + norm(block.norm2, f"{p}.norm2")
    out += linear(block.fc1, f"{p}.mlp.fc1") + linear(block.fc2, f"{p}.mlp.fc2")
  return out + norm(model.norm, "norm")


def extra_tensors(model: ViT) -> dict[str, np.ndarray]:
  return {}


def config(model: ViT, heads: bool = False) -> dict:
  del heads  # the layout has no pretraining heads
  block = model.blocks[0]
  dim = model.num_features
  return {"layout": LAYOUT, "img_size": model.grid * model.patch_size, "patch_size": model.patch_size,
          "in_chans": model.patch_embed.in_features, "embed_dim": dim, "depth": len(model.blocks),
          "num_heads": block.attn.num_heads, "mlp_ratio": block.fc1.out_features / dim, "qkv_bias": True,
          "class_token": True, "global_pool": "token", "num_classes": 0, "num_features": dim}


def check(model: ViT, state: dict[str, np.ndarray], source: str) -> None:
  proj = state.get("patch_embed.proj.weight")
  if proj is not None and proj.shape[-1] != model.patch_size:
    raise ValueError(f"model.patch_size: {source} has patch size {proj.shape[-1]}, the model {model.patch_size}")
  pos = state.get("pos_embed")
  if pos is not None and pos.shape[1] != 1 + model.grid**2:
    raise ValueError(f"model.image_size: {source} has {pos.shape[1] - 1} patch positions "
                     f"({int(round((pos.shape[1] - 1) ** 0.5))}^2), the model {model.grid**2} ({model.grid}^2)")
  depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
  if depth and depth != len(model.blocks):
    raise ValueError(f"model.depth: {source} has {depth} blocks, the model {len(model.blocks)}")
