"""Vision Transformer (Dosovitskiy et al., ICLR 2021) as used by DINO (Caron et al., ICCV 2021).

Pre-norm blocks, a class token and learned position embeddings, which are
resized (bicubic) when an input has another patch grid than the one the
model was built for, so DINO's small local crops go through the same model.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from einops import rearrange
from flax import nnx

_trunc = nnx.initializers.truncated_normal(stddev=0.02)


def _linear(a, b, rngs):
  return nnx.Linear(a, b, kernel_init=_trunc, rngs=rngs)


class Attention(nnx.Module):
  def __init__(self, dim: int, num_heads: int, *, rngs: nnx.Rngs):
    if dim % num_heads:
      raise ValueError(f"model: expected dim divisible by num_heads, got dim={dim}, num_heads={num_heads}")
    self.num_heads = num_heads
    self.qkv = _linear(dim, 3 * dim, rngs)
    self.proj = _linear(dim, dim, rngs)

  def __call__(self, x):
    q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b n h d", three=3, h=self.num_heads)
    out = jax.nn.dot_product_attention(q, k, v)
    return self.proj(rearrange(out, "b n h d -> b n (h d)"))


class Block(nnx.Module):
  def __init__(self, dim: int, num_heads: int, mlp_ratio: float, *, rngs: nnx.Rngs):
    hidden = int(dim * mlp_ratio)
    self.norm1 = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
    self.attn = Attention(dim, num_heads, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
    self.fc1, self.fc2 = _linear(dim, hidden, rngs), _linear(hidden, dim, rngs)

  def __call__(self, x):
    x = x + self.attn(self.norm1(x))
    return x + self.fc2(jax.nn.gelu(self.fc1(self.norm2(x)), approximate=False))


class ViT(nnx.Module):
  """images [B, H, W, C] -> (class token [B, dim], features {"tokens": [B, 1 + N, dim], ...})."""

  def __init__(self, *, image_size: int, patch_size: int, dim: int, depth: int, num_heads: int,
               mlp_ratio: float = 4.0, in_channels: int = 3, rngs: nnx.Rngs):
    if image_size % patch_size:
      raise ValueError(f"model.patch_size: expected a divisor of the image size {image_size}, got {patch_size}")
    self.patch_size, self.grid = patch_size, image_size // patch_size
    self.patch_embed = nnx.Conv(in_channels, dim, (patch_size, patch_size), strides=(patch_size, patch_size),
                                padding="VALID", rngs=rngs)
    self.cls_token = nnx.Param(_trunc(rngs.params(), (1, 1, dim)))
    self.pos_embed = nnx.Param(_trunc(rngs.params(), (1, 1 + self.grid**2, dim)))
    self.blocks = nnx.List([Block(dim, num_heads, mlp_ratio, rngs=rngs) for _ in range(depth)])
    self.norm = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
    self.num_features = dim

  def _pos_embed(self, gh: int, gw: int):
    pos = self.pos_embed[...]
    if (gh, gw) == (self.grid, self.grid):
      return pos
    grid = rearrange(pos[:, 1:], "1 (h w) d -> h w d", h=self.grid)
    grid = jax.image.resize(grid, (gh, gw, grid.shape[-1]), method="bicubic")
    return jnp.concatenate([pos[:, :1], rearrange(grid, "h w d -> 1 (h w) d")], axis=1)

  def __call__(self, x: jax.Array, train: bool = True):
    del train  # no dropout or batch norm
    x = self.patch_embed(x)
    b, gh, gw, d = x.shape
    x = rearrange(x, "b h w d -> b (h w) d")
    x = jnp.concatenate([jnp.broadcast_to(self.cls_token[...], (b, 1, d)), x], axis=1)
    x = x + self._pos_embed(gh, gw)
    for block in self.blocks:
      x = block(x)
    x = self.norm(x)
    cls = x[:, 0].astype(jnp.float32)
    return cls, {"tokens": x, "cls": cls, "patch_mean": jnp.mean(x[:, 1:], axis=1)}


_VITS = {
    "vit_tiny": dict(dim=192, depth=12, num_heads=3),
    "vit_small": dict(dim=384, depth=12, num_heads=6),
    "vit_base": dict(dim=768, depth=12, num_heads=12),
}


def vit(name: str, *, rngs: nnx.Rngs, image_size: int = 32, patch_size: int = 4, in_channels: int = 3,
        depth: int | None = None) -> ViT:
  """`vit_tiny` / `vit_small` / `vit_base`; patch 4 suits 32x32 inputs (an 8x8 grid)."""
  if name not in _VITS:
    raise ValueError(f"model.name: expected one of {sorted(_VITS)}, got {name!r}")
  kw = dict(_VITS[name])
  if depth:
    kw["depth"] = depth
  return ViT(image_size=image_size, patch_size=patch_size, in_channels=in_channels, rngs=rngs, **kw)


VIT_NAMES = tuple(_VITS)
