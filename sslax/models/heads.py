"""Projection heads."""
from __future__ import annotations

import jax
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
