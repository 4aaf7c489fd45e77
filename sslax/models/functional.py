"""The functional core of the NNX models: split a module once into pytrees, merge it back in
one place (inside jitted steps, feature functions and evaluators alike)."""
from __future__ import annotations

from flax import nnx


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """(graphdef, params, batch_stats); models may hold no other variable types."""
  return nnx.split(model, nnx.Param, nnx.BatchStat)


def merge_model(graphdef: nnx.GraphDef, params: nnx.State, batch_stats: nnx.State) -> nnx.Module:
  """The module of `graphdef` with these parameters and statistics. `copy=True`: the module owns
  fresh variables, so a caller (a traced loss, a probe) cannot alias the state it came from."""
  return nnx.merge(graphdef, params, batch_stats, copy=True)
