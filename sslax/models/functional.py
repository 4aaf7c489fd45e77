"""The functional core of the NNX models: split a module once into pytrees, merge it back in
one place (inside jitted steps, feature functions and evaluators alike)."""
from __future__ import annotations

from flax import nnx

from sslax.optim.masks import path_name


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """(graphdef, params, batch_stats); models may hold no other variable types."""
  return nnx.split(model, nnx.Param, nnx.BatchStat)


def merge_model(graphdef: nnx.GraphDef, params: nnx.State, batch_stats: nnx.State) -> nnx.Module:
  """The module of `graphdef` with these parameters and statistics. `copy=True`: the module owns
  fresh variables, so a caller (a traced loss, a probe) cannot alias the state it came from."""
  return nnx.merge(graphdef, params, batch_stats, copy=True)


def copy_by_path(fresh, old):
  """`fresh` (a state pytree) with every leaf whose path also exists in `old` replaced by `old`'s
  leaf: pretrained weights into a network with new parts (adapters, a head). Returns (state,
  paths of `fresh` that `old` lacks). Raises ValueError when a shared leaf changed shape."""
  import jax

  known = {path_name(p): v for p, v in jax.tree_util.tree_leaves_with_path(old)}
  missing = []

  def take(path, value):
    name = path_name(path)
    if name not in known:
      missing.append(name)
      return value
    if tuple(known[name].shape) != tuple(value.shape):
      raise ValueError(f"pretrained weights: {name} has shape {tuple(known[name].shape)}, the network expects "
                       f"{tuple(value.shape)}")
    return known[name]

  return jax.tree_util.tree_map_with_path(take, fresh), missing
