"""wav2vec 2.0 (Baevski et al., NeurIPS 2020) in Flax NNX, following fairseq's `Wav2Vec2Model`.

waveform [B, L] -> convolutional feature encoder -> z [B, T, C]
  -> LayerNorm, projection to D, masked frames replaced by a learned vector
  -> convolutional relative positional embedding -> Transformer -> c [B, T, D]
z -> product quantizer (G groups of V codewords, straight-through Gumbel-softmax) -> q.

`__call__` returns what the pretraining loss needs; `encode` gives
unmasked context features and the valid-frame mask for probes and heads.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.models.transformer import TransformerEncoder, dropout

BASE_CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


def conv_output_lengths(lengths, conv_layers: Sequence[Sequence[int]]):
  """Valid frames after the feature encoder: floor((L - k) / s) + 1 per layer, at least 0.
  A Python int gives a Python int (static shapes); an array gives an array."""
  for _, kernel, stride in conv_layers:
    if isinstance(lengths, int):
      lengths = max((lengths - kernel) // stride + 1, 0)
    else:
      lengths = jnp.maximum((lengths - kernel) // stride + 1, 0)
  return lengths


class MaskedGroupNorm(nnx.Module):
  """fairseq's first-layer `GroupNorm(C, C)` (each channel normalized over time), with the statistics
  taken over valid frames only, so a recording's features do not depend on how much padding its batch
  has. Without `valid` it is exactly the unmasked GroupNorm."""

  def __init__(self, dim: int, *, rngs: nnx.Rngs):
    self.scale = nnx.Param(jnp.ones((dim,)))
    self.bias = nnx.Param(jnp.zeros((dim,)))

  def __call__(self, x: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    w = jnp.ones(x.shape[:2] + (1,), jnp.float32) if valid is None else valid[..., None].astype(jnp.float32)
    n = jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)
    xf = x.astype(jnp.float32)
    mean = jnp.sum(xf * w, axis=1, keepdims=True) / n
    var = jnp.sum(jnp.square(xf - mean) * w, axis=1, keepdims=True) / n
    y = (xf - mean) * jax.lax.rsqrt(var + 1e-5) * self.scale[...] + self.bias[...]
    return y.astype(x.dtype)


def _grad_scale(x: jax.Array, scale: float) -> jax.Array:
  """Identity forward, gradient times `scale` (fairseq's GradMultiply, `feature_grad_mult`)."""
  if scale == 1.0:
    return x
  return x * scale + jax.lax.stop_gradient(x) * (1.0 - scale)


class FeatureEncoder(nnx.Module):
  """The paper's 7 temporal convolutions (512 channels; kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2).

  mode "group_norm" (BASE): a per-channel GroupNorm after the first convolution only;
  mode "layer_norm" (LARGE): a LayerNorm over channels after every convolution. GELU after each.
  """

  def __init__(self, conv_layers, *, mode: str = "group_norm", conv_bias: bool = False, rngs: nnx.Rngs):
    if mode not in ("group_norm", "layer_norm"):
      raise ValueError(f"model.extractor_mode: expected 'group_norm' or 'layer_norm', got {mode!r}")
    self.conv_layers = tuple(tuple(int(v) for v in layer) for layer in conv_layers)
    convs, norms = [], []
    in_dim = 1
    for i, (dim, kernel, stride) in enumerate(self.conv_layers):
      convs.append(nnx.Conv(in_dim, dim, (kernel,), strides=(stride,), padding="VALID", use_bias=conv_bias,
                            kernel_init=nnx.initializers.he_normal(), rngs=rngs))
      if mode == "layer_norm":
        norms.append(nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs))
      elif i == 0:
        norms.append(MaskedGroupNorm(dim, rngs=rngs))
      else:
        norms.append(None)
      in_dim = dim
    self.convs, self.norms = nnx.List(convs), nnx.List(norms)
    self.num_features = in_dim

  def __call__(self, audio: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """audio [B, L] -> [B, T, C]; with `lengths` [B] the group norm sees valid frames only."""
    x = audio[..., None]
    for conv, norm, layer in zip(self.convs, self.norms, self.conv_layers):
      x = conv(x)
      if lengths is not None:
        lengths = conv_output_lengths(lengths, [layer])
      if isinstance(norm, MaskedGroupNorm):
        valid = None if lengths is None else jnp.arange(x.shape[1])[None, :] < lengths[:, None]
        x = norm(x, valid)
      elif norm is not None:
        x = norm(x)
      x = jax.nn.gelu(x, approximate=False)
    return x


class PositionalConv(nnx.Module):
  """A grouped convolution over time with weight normalization, added to its input (the paper's
  relative positional embedding; kernel 128, 16 groups). As fairseq, the weight norm is over the
  output and input channels for each kernel position (torch `weight_norm(dim=2)`)."""

  def __init__(self, dim: int, kernel: int, groups: int, *, rngs: nnx.Rngs):
    if dim % groups:
      raise ValueError(f"model.pos_conv_groups: expected a divisor of model.dim={dim}, got {groups}")
    std = math.sqrt(4.0 / (kernel * dim))
    v = std * jax.random.normal(rngs.params(), (kernel, dim // groups, dim))
    self.v = nnx.Param(v)
    self.g = nnx.Param(jnp.sqrt(jnp.sum(v**2, axis=(1, 2))))
    self.bias = nnx.Param(jnp.zeros((dim,)))
    self.kernel, self.groups = kernel, groups

  def __call__(self, x: jax.Array) -> jax.Array:
    v = self.v[...]
    w = v * (self.g[...] / jnp.sqrt(jnp.sum(v**2, axis=(1, 2)) + 1e-12))[:, None, None]
    pad = self.kernel // 2
    y = jax.lax.conv_general_dilated(x, w.astype(x.dtype), (1,), [(pad, pad)], feature_group_count=self.groups,
                                     dimension_numbers=("NWC", "WIO", "NWC"))
    if self.kernel % 2 == 0:  # fairseq's SamePad: an even kernel gives one frame too many
      y = y[:, :-1]
    return jax.nn.gelu(y + self.bias[...], approximate=False)


class GumbelQuantizer(nnx.Module):
  """Product quantization (Jegou et al. 2011) with G groups of V codewords of size vq_dim / G.

  Training picks codewords with a straight-through Gumbel-softmax (Jang et al. 2017): the forward
  is the hard one-hot, the gradient that of the soft distribution. Without a key, the argmax.
  """

  def __init__(self, in_dim: int, num_groups: int, num_vars: int, vq_dim: int, *, rngs: nnx.Rngs):
    if vq_dim % num_groups:
      raise ValueError(f"model.latent_groups: expected a divisor of the codeword size {vq_dim}, got {num_groups}")
    self.num_groups, self.num_vars = num_groups, num_vars
    self.weight_proj = nnx.Linear(in_dim, num_groups * num_vars, kernel_init=nnx.initializers.normal(1.0),
                                  rngs=rngs)
    self.codevars = nnx.Param(jax.random.uniform(rngs.params(), (num_groups, num_vars, vq_dim // num_groups)))

  def __call__(self, x: jax.Array, *, tau: jax.Array | float = 1.0, key: jax.Array | None = None):
    """x [B, T, C] -> (quantized [B, T, vq_dim], soft probs [B, T, G, V], hard codeword ids [B, T, G])."""
    b, t, _ = x.shape
    logits = self.weight_proj(x).astype(jnp.float32).reshape(b, t, self.num_groups, self.num_vars)
    probs = jax.nn.softmax(logits, axis=-1)
    ids = jnp.argmax(logits, axis=-1)
    if key is None:
      onehot = jax.nn.one_hot(ids, self.num_vars, dtype=jnp.float32)
    else:
      gumbel = jax.random.gumbel(key, logits.shape, jnp.float32)
      soft = jax.nn.softmax((logits + gumbel) / tau, axis=-1)
      hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), self.num_vars, dtype=jnp.float32)
      onehot = hard - jax.lax.stop_gradient(soft) + soft
    q = jnp.einsum("btgv,gvd->btgd", onehot, self.codevars[...].astype(jnp.float32))
    return q.reshape(b, t, -1).astype(x.dtype), probs, ids


class Wav2Vec2(nnx.Module):
  """The wav2vec 2.0 model; sizes as fairseq's BASE by default (D 768, 12 layers, 12 heads)."""

  def __init__(self, *, conv_layers=BASE_CONV_LAYERS, extractor_mode: str = "group_norm", dim: int = 768,
               depth: int = 12, num_heads: int = 12, mlp_dim: int = 3072, final_dim: int = 256,
               latent_groups: int = 2, latent_vars: int = 320, pos_conv_kernel: int = 128,
               pos_conv_groups: int = 16, dropout: float = 0.1, dropout_input: float = 0.1,
               dropout_features: float = 0.1, feature_grad_mult: float = 0.1, quantize: bool = True,
               rngs: nnx.Rngs):
    self.feature_encoder = FeatureEncoder(conv_layers, mode=extractor_mode, rngs=rngs)
    c = self.feature_encoder.num_features
    self.conv_layers = self.feature_encoder.conv_layers
    self.layer_norm = nnx.LayerNorm(c, epsilon=1e-5, rngs=rngs)
    self.post_extract_proj = nnx.Linear(c, dim, rngs=rngs)
    self.mask_emb = nnx.Param(jax.random.uniform(rngs.params(), (dim,)))
    self.pos_conv = PositionalConv(dim, pos_conv_kernel, pos_conv_groups, rngs=rngs)
    self.encoder_norm = nnx.LayerNorm(dim, epsilon=1e-5, rngs=rngs)
    self.encoder = TransformerEncoder(dim, depth, num_heads, mlp_dim, pre_norm=False, dropout=dropout, rngs=rngs)
    # quantize=False: no quantizer (HuBERT's targets are cluster ids, `sslax.models.hubert`)
    self.quantizer = GumbelQuantizer(c, latent_groups, latent_vars, final_dim, rngs=rngs) if quantize else None
    self.project_q = nnx.Linear(final_dim, final_dim, rngs=rngs) if quantize else None
    self.final_proj = nnx.Linear(dim, final_dim, rngs=rngs)
    self.rates = (dropout_input, dropout_features)
    self.feature_grad_mult = feature_grad_mult
    self.num_features = dim

  def frame_lengths(self, lengths: jax.Array) -> jax.Array:
    return conv_output_lengths(lengths, self.conv_layers)

  def _features(self, audio, lengths):
    z = _grad_scale(self.feature_encoder(audio, lengths), self.feature_grad_mult)
    valid = jnp.arange(z.shape[1])[None, :] < self.frame_lengths(lengths)[:, None]
    return z, valid

  def _context(self, x, valid, key=None):
    """(c [B, T, D], {"input": the Transformer's input, "layer_<i>": each layer's output})."""
    x = jnp.where(valid[..., None], x, 0.0)  # padding frames carry no signal into the convolution
    x = self.encoder_norm(x + self.pos_conv(x))
    c, layers = self.encoder(x, valid, key)
    return c, {"input": x, **layers}

  def __call__(self, audio: jax.Array, lengths: jax.Array, mask: jax.Array, *, tau: jax.Array | float,
               key: jax.Array | None = None) -> dict[str, jax.Array]:
    """Pretraining forward pass.

    Args:
      audio: [B, L] normalized waveforms; lengths [B] valid samples.
      mask: [B, T] bool frames to replace by the mask embedding (T = frames of L).
      tau: Gumbel-softmax temperature. key: dropout and Gumbel noise (None: neither).

    Returns:
      {"context": [B, T, F], "quantized": [B, T, F], "probs": [B, T, G, V], "codes": [B, T, G],
       "features": [B, T, C] (feature encoder output, for the penalty), "valid": [B, T] bool}.
    """
    k_in, k_feat, k_enc, k_gumbel = [None] * 4 if key is None else jax.random.split(key, 4)
    z, valid = self._features(audio, lengths)
    if mask.shape != valid.shape:
      raise ValueError(f"mask: expected shape {valid.shape} (batch, frames), got {mask.shape}")
    feats = self.layer_norm(z)
    unmasked = dropout(feats, self.rates[1], k_feat)
    x = dropout(self.post_extract_proj(feats), self.rates[0], k_in)
    x = jnp.where(mask[..., None], self.mask_emb[...].astype(x.dtype), x)
    c, _ = self._context(x, valid, k_enc)
    q, probs, codes = self.quantizer(unmasked, tau=tau, key=k_gumbel)
    return {"context": self.final_proj(c), "quantized": self.project_q(q), "probs": probs, "codes": codes,
            "features": z, "valid": valid}

  def encode(self, audio: jax.Array, lengths: jax.Array, *, key: jax.Array | None = None):
    """Unmasked context: (c [B, T, D], {"valid": [B, T] bool, "conv": [B, T, C], "input": [B, T, D] (the
    Transformer's input, SUPERB's layer 0), "layer_<i>": [B, T, D]})."""
    z, valid = self._features(audio, lengths)
    x = dropout(self.post_extract_proj(self.layer_norm(z)), self.rates[0], key)
    c, features = self._context(x, valid)
    return c, {"valid": valid, "conv": z, **features}
