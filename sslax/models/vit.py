"""Vision Transformer (Dosovitskiy et al., ICLR 2021) as used by DINO (Caron et al., ICCV 2021)
and MAE (He et al., CVPR 2022).

Pre-norm blocks, a class token and position embeddings, which are resized
(bicubic) when an input has another patch grid than the one the model was
built for, so DINO's small local crops go through the same model. Position
embeddings are learned (`pos_embed='learned'`, DINO) or start at MAE's fixed
2-D sin-cos table (`'sincos'`; a method keeps them fixed by freezing
`pos_embed` in `optim.freeze`, as MAE's `requires_grad=False`).

The forward pass is in two parts so masked-image methods reuse the encoder:
`embed` (patches -> tokens with positions; SimMIM's mask tokens replace
masked patches there) and `encode_tokens` (class token, blocks, norm) on any
subset of the tokens (MAE's visible patches, gathered with one take).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from einops import rearrange
from flax import nnx

from sslax.models.attention import attention

_trunc = nnx.initializers.truncated_normal(stddev=0.02)


def _linear(a, b, rngs):
  return nnx.Linear(a, b, kernel_init=_trunc, rngs=rngs)


def sincos_pos_embed(dim: int, grid: int, cls_token: bool = True) -> np.ndarray:
  """[1 + grid**2 (or grid**2), dim] float32: MAE's fixed 2-D sin-cos position table
  (facebookresearch/mae `util/pos_embed.py`): half the channels encode the column, half the row,
  each as [sin(pos * w), cos(pos * w)] with w = 10000^(-k / (dim / 4)); the class token's row is 0.

  Examples:
    >>> table = sincos_pos_embed(8, 2)
    >>> table.shape, float(abs(table[0]).max())
    ((5, 8), 0.0)
  """
  if dim % 4:
    raise ValueError(f"model.dim: expected a multiple of 4 for sin-cos position embeddings, got {dim}")
  omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))

  def one_axis(pos):
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)

  col, row = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64))
  table = np.concatenate([one_axis(col), one_axis(row)], axis=1)  # the reference's order: w first
  if cls_token:
    table = np.concatenate([np.zeros((1, dim)), table], axis=0)
  return table.astype(np.float32)


class Attention(nnx.Module):
  def __init__(self, dim: int, num_heads: int, *, rngs: nnx.Rngs):
    if dim % num_heads:
      raise ValueError(f"model: expected dim divisible by num_heads, got dim={dim}, num_heads={num_heads}")
    self.num_heads = num_heads
    self.qkv = _linear(dim, 3 * dim, rngs)
    self.proj = _linear(dim, dim, rngs)

  def __call__(self, x, mask=None):
    """x [B, N, dim]; mask: None or [B, N] bool, the keys every query may attend to."""
    q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b n h d", three=3, h=self.num_heads)
    out = attention(q, k, v, mask)
    return self.proj(rearrange(out, "b n h d -> b n (h d)"))


class Block(nnx.Module):
  def __init__(self, dim: int, num_heads: int, mlp_ratio: float, *, rngs: nnx.Rngs):
    hidden = int(dim * mlp_ratio)
    self.norm1 = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
    self.attn = Attention(dim, num_heads, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
    self.fc1, self.fc2 = _linear(dim, hidden, rngs), _linear(hidden, dim, rngs)

  def __call__(self, x, mask=None):
    x = x + self.attn(self.norm1(x), mask)
    return x + self.fc2(jax.nn.gelu(self.fc1(self.norm2(x)), approximate=False))


class ViT(nnx.Module):
  """images [B, H, W, C] -> (class token [B, dim], features {"tokens": [B, 1 + N, dim], ...})."""

  def __init__(self, *, image_size: int, patch_size: int, dim: int, depth: int, num_heads: int,
               mlp_ratio: float = 4.0, in_channels: int = 3, pos_embed: str = "learned", rngs: nnx.Rngs):
    if image_size % patch_size:
      raise ValueError(f"model.patch_size: expected a divisor of the image size {image_size}, got {patch_size}")
    if pos_embed not in ("learned", "sincos"):
      raise ValueError(f"model.pos_embed: expected 'learned' or 'sincos', got {pos_embed!r}")
    self.patch_size, self.grid, self.in_channels = patch_size, image_size // patch_size, in_channels
    self.patch_embed = nnx.Conv(in_channels, dim, (patch_size, patch_size), strides=(patch_size, patch_size),
                                padding="VALID", rngs=rngs)
    self.cls_token = nnx.Param(_trunc(rngs.params(), (1, 1, dim)))
    if pos_embed == "sincos":
      self.pos_embed = nnx.Param(jnp.asarray(sincos_pos_embed(dim, self.grid))[None])
    else:
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

  def embed(self, x: jax.Array, mask: jax.Array | None = None, mask_token: jax.Array | None = None):
    """images [B, H, W, C] -> patch tokens [B, N, dim] in raster order, position embeddings added.
    With `mask` ([B, N] bool) the masked patches' embeddings are replaced by `mask_token` [dim]
    before positions are added (SimMIM)."""
    x = self.patch_embed(x)
    b, gh, gw, d = x.shape
    x = rearrange(x, "b h w d -> b (h w) d")
    if mask is not None:
      x = jnp.where(mask[..., None], mask_token.astype(x.dtype), x)
    return x + self._pos_embed(gh, gw)[:, 1:]

  def encode_tokens(self, x: jax.Array, mask: jax.Array | None = None):
    """patch tokens [B, n, dim] (all of them, or a subset such as MAE's visible ones) -> the class
    token prepended, the blocks, the final norm: (class token [B, dim] float32, features:
    "tokens" [B, 1 + n, dim], "cls", "patch_mean" [B, dim], "block_patch_means" [B, depth, dim]).
    `mask` [B, n] bool: the tokens attention may read (the class token always; None: all)."""
    b, _, d = x.shape
    cls = self.cls_token[...] + self.pos_embed[:, :1]
    x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, d)).astype(x.dtype), x], axis=1)
    if mask is not None:
      mask = jnp.concatenate([jnp.ones((b, 1), bool), mask], axis=1)
    block_means = []
    for block in self.blocks:
      x = block(x, mask)
      block_means.append(jnp.mean(x[:, 1:], axis=1).astype(jnp.float32))
    x = self.norm(x)
    cls = x[:, 0].astype(jnp.float32)
    # block_patch_means [B, depth, dim]: each block's output averaged over the patches (the
    # per-block probe's features; unused outputs cost nothing in a compiled step)
    return cls, {"tokens": x, "cls": cls, "patch_mean": jnp.mean(x[:, 1:], axis=1).astype(jnp.float32),
                 "block_patch_means": jnp.stack(block_means, axis=1)}

  def __call__(self, x: jax.Array, train: bool = True):
    del train  # no dropout or batch norm
    return self.encode_tokens(self.embed(x))


_VITS = {
    "vit_tiny": dict(dim=192, depth=12, num_heads=3),
    "vit_small": dict(dim=384, depth=12, num_heads=6),
    "vit_base": dict(dim=768, depth=12, num_heads=12),
}


def vit(name: str, *, rngs: nnx.Rngs, image_size: int = 32, patch_size: int = 4, in_channels: int = 3,
        depth: int | None = None, pos_embed: str = "learned") -> ViT:
  """`vit_tiny` / `vit_small` / `vit_base`; patch 4 suits 32x32 inputs (an 8x8 grid)."""
  if name not in _VITS:
    raise ValueError(f"model.name: expected one of {sorted(_VITS)}, got {name!r}")
  kw = dict(_VITS[name])
  if depth:
    kw["depth"] = depth
  return ViT(image_size=image_size, patch_size=patch_size, in_channels=in_channels, pos_embed=pos_embed,
             rngs=rngs, **kw)


VIT_NAMES = tuple(_VITS)
