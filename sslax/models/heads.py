"""Projection heads."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class MLPHead(nnx.Module):
  """Linear -> [BN] -> ReLU -> ... -> Linear [-> BN].

  SimCLR's projector (Chen et al. 2020) is `MLPHead(d, 2048, 128, num_layers=2)`;
  solo-learn puts a BatchNorm after each hidden linear layer.
  Returns `(output [B, out], {"hidden": last hidden activation})`.
  """

  def __init__(self, in_features: int, hidden_features: int, out_features: int, *,
               num_layers: int = 2, batch_norm: bool = True, last_batch_norm: bool = False,
               rngs: nnx.Rngs):
    dims = [in_features] + [hidden_features] * (num_layers - 1) + [out_features]
    self.linears = nnx.List([nnx.Linear(a, b, use_bias=not (batch_norm and i < num_layers - 1),
                                        rngs=rngs) for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]))])
    self.norms = nnx.List([nnx.BatchNorm(d, momentum=0.9, rngs=rngs) for d in dims[1:-1]]
                          if batch_norm else [])
    self.last_norm = (nnx.BatchNorm(out_features, momentum=0.9, use_bias=False, use_scale=False, rngs=rngs)
                      if last_batch_norm else None)

  def __call__(self, x: jax.Array, train: bool = True):
    hidden = x
    for i, linear in enumerate(self.linears[:-1]):
      x = linear(x)
      if self.norms:
        x = self.norms[i](x, use_running_average=not train)
      x = jax.nn.relu(x)
      hidden = x
    x = self.linears[-1](x)
    if self.last_norm is not None:
      x = self.last_norm(x, use_running_average=not train)
    return x, {"hidden": hidden}


def unit_prototypes(v: jax.Array, freeze: jax.Array | bool = False) -> jax.Array:
  """The prototype columns of v [D, K] scaled to unit length (weight normalization with gain 1),
  with no gradient while `freeze` (a traced bool: DINO and SwAV cancel the prototypes' gradients
  for their first steps; a where on a stop-gradient does that inside the one jitted step).

  >>> import numpy as np
  >>> np.linalg.norm(unit_prototypes(np.array([[3.0, 0.0], [4.0, 2.0]])), axis=0).round(5).tolist()
  [1.0, 1.0]
  """
  v = jnp.where(freeze, jax.lax.stop_gradient(v), v)
  return v * jax.lax.rsqrt(jnp.maximum(jnp.sum(v * v, axis=0, keepdims=True), 1e-24))


class DINOHead(nnx.Module):
  """DINO's projection head (Caron et al., ICCV 2021, and its reference code):

  an MLP (GELU, `num_layers` linear layers, optional BatchNorm) down to a
  `bottleneck_dim` embedding, l2-normalized, then a weight-normalized linear
  layer without bias onto `num_prototypes` logits. With `norm_last_layer`
  the weight-norm gain is fixed to 1 (each prototype a unit vector);
  otherwise it is a learned per-prototype gain initialized to 1.
  Returns `(logits [B, K], {"embedding": [B, bottleneck_dim]})`.
  """

  def __init__(self, in_features: int, hidden_features: int = 2048, bottleneck_dim: int = 256,
               num_prototypes: int = 65536, *, num_layers: int = 3, batch_norm: bool = False,
               norm_last_layer: bool = True, rngs: nnx.Rngs):
    trunc = nnx.initializers.truncated_normal(stddev=0.02)
    dims = [in_features] + [hidden_features] * (num_layers - 1) + [bottleneck_dim]
    self.linears = nnx.List([nnx.Linear(a, b, kernel_init=trunc, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
    self.norms = nnx.List([nnx.BatchNorm(d, momentum=0.9, rngs=rngs) for d in dims[1:-1]] if batch_norm else [])
    self.prototypes = nnx.Param(trunc(rngs.params(), (bottleneck_dim, num_prototypes)))
    self.gain = None if norm_last_layer else nnx.Param(jnp.ones((num_prototypes,), jnp.float32))

  def __call__(self, x: jax.Array, train: bool = True, freeze_prototypes: jax.Array | bool = False):
    for i, linear in enumerate(self.linears[:-1]):
      x = linear(x)
      if self.norms:
        x = self.norms[i](x, use_running_average=not train)
      x = jax.nn.gelu(x, approximate=False)
    x = self.linears[-1](x)
    embedding = x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-24))
    w = unit_prototypes(self.prototypes[...], freeze_prototypes)
    if self.gain is not None:
      gain = jnp.where(freeze_prototypes, jax.lax.stop_gradient(self.gain[...]), self.gain[...])
      w = w * gain
    return embedding @ w, {"embedding": embedding}


class SpanBoundaryHead(nnx.Module):
  """SpanBERT's span-boundary representation (Joshi et al., TACL 2020, eq. 1-2): a token inside a
  masked span s..e is represented from the encoder outputs of the boundary tokens x_{s-1}, x_{e+1}
  and a learned embedding of its offset i - s, through two Linear -> GELU -> LayerNorm layers
  (the reference's `MLPWithLayerNorm` in `BertPairTargetPredictionHead`); the caller projects the
  output onto the vocabulary.
  """

  def __init__(self, dim: int, max_offsets: int, offset_dim: int, *, rngs: nnx.Rngs):
    init = nnx.initializers.normal(0.02)
    self.offset_embed = nnx.Embed(max_offsets, offset_dim, embedding_init=init, rngs=rngs)
    self.linear1 = nnx.Linear(2 * dim + offset_dim, dim, kernel_init=init, rngs=rngs)
    self.norm1 = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.linear2 = nnx.Linear(dim, dim, kernel_init=init, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=1e-12, rngs=rngs)
    self.max_offsets = max_offsets

  def __call__(self, left: jax.Array, right: jax.Array, offset: jax.Array) -> jax.Array:
    """left, right [..., D] boundary outputs, offset [...] int (clipped to max_offsets - 1) -> [..., D]."""
    pos = self.offset_embed(jnp.clip(offset, 0, self.max_offsets - 1)).astype(left.dtype)
    h = self.norm1(jax.nn.gelu(self.linear1(jnp.concatenate([left, right, pos], axis=-1)), approximate=False))
    return self.norm2(jax.nn.gelu(self.linear2(h), approximate=False))
