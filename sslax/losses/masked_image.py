"""Masked-image reconstruction losses: MAE's normalized-pixel MSE and SimMIM's l1, on patches."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from einops import rearrange


def patchify(images: jax.Array, patch_size: int) -> jax.Array:
  """[B, H, W, C] -> [B, N, p * p * C] in raster order of the patch grid, each patch's pixels
  row-major then channel (facebookresearch/mae `patchify`: 'nchpwq->nhwpqc').

  Examples:
    >>> import numpy as np
    >>> x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    >>> p = patchify(x, 2)
    >>> p.shape, bool((unpatchify(p, 2, 2) == x).all())
    ((2, 4, 12), True)
  """
  return rearrange(images, "b (h p) (w q) c -> b (h w) (p q c)", p=patch_size, q=patch_size)


def unpatchify(patches: jax.Array, patch_size: int, grid: int) -> jax.Array:
  """The inverse of `patchify`: [B, grid * grid, p * p * C] -> [B, grid * p, grid * p, C]."""
  return rearrange(patches, "b (h w) (p q c) -> b (h p) (w q) c", h=grid, w=grid, p=patch_size, q=patch_size)


def normalized_pixel_targets(patches: jax.Array, eps: float = 1e-6) -> jax.Array:
  """MAE's `norm_pix_loss` targets: each patch minus its mean, over sqrt(var + eps), the variance
  unbiased as torch's `Tensor.var` (He et al. 2022, sec. 4 "with normalized pixels")."""
  patches = patches.astype(jnp.float32)
  mean = jnp.mean(patches, axis=-1, keepdims=True)
  var = jnp.var(patches, axis=-1, keepdims=True, ddof=1)
  return (patches - mean) / jnp.sqrt(var + eps)


def mae_loss(pred: jax.Array, patches: jax.Array, mask: jax.Array, *, norm_pix: bool = True) -> jax.Array:
  """MAE (He et al., CVPR 2022) reconstruction loss, as `MaskedAutoencoderViT.forward_loss`:
  the mean squared error per patch, averaged over the masked patches only.

  Args:
    pred: [B, N, P] the decoder's pixel predictions for every patch.
    patches: [B, N, P] the image's patches (`patchify`), in the encoder's input normalization.
    mask: [B, N] 1 where the patch was masked (removed from the encoder), 0 where visible.
    norm_pix: targets normalized per patch (`normalized_pixel_targets`), the paper's default.
  Returns: scalar float32.
  """
  target = normalized_pixel_targets(patches) if norm_pix else patches.astype(jnp.float32)
  per_patch = jnp.mean(jnp.square(pred.astype(jnp.float32) - target), axis=-1)
  mask = mask.astype(jnp.float32)
  return jnp.sum(per_patch * mask) / jnp.sum(mask)


def simmim_loss(pred: jax.Array, patches: jax.Array, mask: jax.Array, *, channels: int) -> jax.Array:
  """SimMIM (Xie et al., CVPR 2022) loss, as microsoft/SimMIM `SimMIM.forward`: l1 between the
  predicted and the (normalized) input pixels, summed over the masked pixels and channels, over
  (masked pixels + 1e-5), over the channels.

  Args:
    pred: [B, N, p * p * C] predictions.
    patches: [B, N, p * p * C] input patches (`patchify`).
    mask: [B, N] 1 where the patch was replaced by the mask token.
    channels: C (the reference divides by `in_chans`).
  Returns: scalar float32.
  """
  mask = mask.astype(jnp.float32)
  l1 = jnp.abs(pred.astype(jnp.float32) - patches.astype(jnp.float32))
  pixels_per_patch = patches.shape[-1] // channels
  masked_pixels = jnp.sum(mask) * pixels_per_patch
  return jnp.sum(l1 * mask[..., None]) / (masked_pixels + 1e-5) / channels


def denoising_loss(reconstruction: jax.Array, clean: jax.Array) -> jax.Array:
  """Denoising autoencoder (Vincent et al., ICML 2008) squared error: the mean over every pixel
  and channel of (reconstruction - clean input)^2, whatever the corruption was.

  Args: reconstruction, clean [B, H, W, C]. Returns scalar float32.
  """
  return jnp.mean(jnp.square(reconstruction.astype(jnp.float32) - clean.astype(jnp.float32)))


def center_box(size: int, overlap: int = 0) -> tuple[int, int]:
  """(start, end) of the centre square of side size / 2 (context encoders' hole), each side moved
  in by `overlap` pixels: the region the encoder does not see is `center_box(size, overlap)`, the
  region predicted and scored is `center_box(size)`."""
  start, end = size // 4, size // 4 + size // 2
  return start + overlap, end - overlap


def context_encoder_loss(pred_center: jax.Array, true_center: jax.Array, *, overlap: int,
                         overlap_weight: float = 10.0) -> jax.Array:
  """Context encoders' reconstruction loss (Pathak et al., CVPR 2016; pathak22/context-encoder
  `train.lua`): squared error over the predicted centre, each element weighted `overlap_weight`
  in the band of `overlap` pixels along its border (which the encoder saw, so that the fill
  blends in) and 1 inside, then the mean over every element. The reference also scales it by
  wtl2 = 0.999 against its adversarial term; without that term the scale is 1.

  Args: pred_center, true_center [B, h, w, C] (the centre square). Returns scalar float32.
  """
  h, w = true_center.shape[1:3]
  rows, cols = jnp.arange(h), jnp.arange(w)
  inside_r = (rows >= overlap) & (rows < h - overlap)
  inside_c = (cols >= overlap) & (cols < w - overlap)
  weight = jnp.where(inside_r[:, None] & inside_c[None, :], 1.0, overlap_weight)[None, :, :, None]
  sq = jnp.square(pred_center.astype(jnp.float32) - true_center.astype(jnp.float32))
  return jnp.mean(sq * weight)
