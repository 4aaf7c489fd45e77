"""Mixed precision: bfloat16 compute with float32 parameters, optimizer state and reductions.

Flax layers keep two dtypes: `param_dtype` (storage, float32 here) and
`dtype` (the computation: inputs and parameters are cast to it inside the
layer). Setting `dtype` on every Flax layer of a built model gives the usual
mixed-precision recipe (Micikevicius et al., "Mixed Precision Training",
ICLR 2018; bfloat16 needs no loss scaling) without threading a dtype through
each model's constructor:
- parameters, gradients (the cast is differentiated back to float32),
  optimizer state, EMA targets and batch-norm running statistics stay float32;
- matmuls and convolutions run in bfloat16;
- batch-norm / layer-norm statistics are computed in float32 by Flax,
  attention softmax in float32 by `jax.nn.dot_product_attention`, and every
  sslax loss casts its inputs to float32 before reducing.
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def set_compute_dtype(model: nnx.Module, name: str) -> nnx.Module:
  """Sets the computation dtype of every Flax layer in `model` (in place); returns `model`.

  Args:
    model: any NNX module tree (ResNet, ViT, BERT, GPT, wav2vec 2.0, heads).
    name: 'float32' (no change) or 'bfloat16' (`train.compute_dtype`).
  """
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"train.compute_dtype: expected one of {sorted(COMPUTE_DTYPES)}, got {name!r}")
  if name == "float32":
    return model
  dtype = COMPUTE_DTYPES[name]
  for _, node in nnx.iter_graph(model):
    # Flax's layers (Linear, Conv, Embed, LayerNorm, BatchNorm, ...) are the modules with both
    if isinstance(node, nnx.Module) and hasattr(node, "dtype") and hasattr(node, "param_dtype"):
      node.dtype = dtype
  return model
