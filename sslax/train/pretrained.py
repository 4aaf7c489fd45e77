"""Starting parts of a network from other runs' checkpoints (`train.init_from`): a SimCLR
encoder as CLIP's image tower, a BERT as its text tower (LiT, Zhai et al. 2022).

`train.init_from` is a tuple of `(path in this network, workdir of a run, path in that run's
network)`, e.g. `(("image_tower", "runs/simclr", "encoder"), ("text_tower", "runs/bert", ""))`.
Each entry copies, by path, every parameter and batch statistic under the second path of that
run's latest valid checkpoint (its sslax manifest checked) into the first path of this network,
before the first step; a run resumed from its own checkpoint restores over it. The other run's
arrays are read from its checkpoint's own metadata, so neither its config nor its data is needed.
Orbax restores whole trees; choosing subtrees by path and copying them into a fresh network is
what it lacks, so it is written here.

A first path under `method_state/` copies into the method's state instead of the network: a
frozen network the method keeps beside the trained one (HuBERT's second iteration keeps its
first iteration there, `("method_state/teacher", "runs/hubert", "")`).
"""
from __future__ import annotations

import logging

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from sslax.models.functional import copy_by_path
from sslax.optim.masks import path_name
from sslax.paths import join
from sslax.train.checkpoint import verify_manifest

log = logging.getLogger("sslax")


def latest_weights(workdir: str) -> tuple[int, dict, dict]:
  """(step, params, batch_stats) as nested dicts of NumPy arrays from the latest checkpoint of
  `workdir` whose manifest is valid. Raises ValueError naming the workdir when there is none."""
  directory = epath.Path(join(workdir, "checkpoints"))  # a folder or gs:// (sslax.paths)
  steps = sorted((int(d.name) for d in directory.iterdir() if d.name.isdigit()), reverse=True) \
      if directory.is_dir() else []
  problems = []
  for step in steps:
    step_dir = directory / str(step)
    problem = verify_manifest(step_dir)
    if problem is not None:
      problems.append(f"step {step}: {problem}")
      continue
    checkpointer = ocp.PyTreeCheckpointer()
    path = step_dir / "state"
    meta = checkpointer.metadata(path)
    tree = getattr(meta, "item_metadata", meta)
    tree = getattr(tree, "tree", tree)
    wanted = {k: tree[k] for k in ("params", "batch_stats")}
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
    restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
        item=wanted, restore_args=args, partial_restore=True))
    return step, restored["params"], restored["batch_stats"]
  raise ValueError(f"train.init_from: expected a run with a valid checkpoint under {directory}, found "
                   + ("; ".join(problems) if problems else "none"))


def _subtree(tree, path: str, where: str):
  node = tree
  for part in [p for p in path.split("/") if p]:
    if not isinstance(node, dict) or part not in node:
      keys = sorted(node) if isinstance(node, dict) else []
      raise ValueError(f"train.init_from: {where} has no {path!r} (at {part!r}, expected one of {keys})")
    node = node[part]
  return node


def _nest(path: str, value):
  for part in reversed([p for p in path.split("/") if p]):
    value = {part: value}
  return value


def _under(name: str, path: str) -> bool:
  """Whether the leaf named `name` ('a/b/c') lies under `path` ('a/b'; '' is the whole network)."""
  return not path or (name + "/").startswith(path.rstrip("/") + "/")


def _names_under(tree, path: str) -> list[str]:
  return [n for n in (path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)) if _under(n, path)]


def copy_subtree(fresh, source_tree, *, into: str, source_path: str, where: str):
  """`fresh` (an nnx.State) with its leaves under `into` replaced by `source_tree`'s leaves under
  `source_path`; every leaf under `into` must be found there (same shape)."""
  old = _nest(into, _subtree(source_tree, source_path, where))
  new, missing = copy_by_path(fresh, old)
  missing = [m for m in missing if _under(m, into)]
  if missing:
    raise ValueError(f"train.init_from: {where} lacks {len(missing)} parameters of {into!r}, e.g. {missing[0]}")
  return new


def init_from(state, entries):
  """`state` with the parts `entries` (`train.init_from`, module docstring) name copied in."""
  for entry in entries:
    if not (isinstance(entry, (tuple, list)) and len(entry) == 3 and all(isinstance(e, str) for e in entry)):
      raise ValueError(f"train.init_from: expected (path here, workdir, path there) string triples, got {entry!r}")
    into, workdir, source_path = entry
    in_method = into == "method_state" or into.startswith("method_state/")
    target = state.method_state if in_method else state.params
    inside = into[len("method_state"):].strip("/") if in_method else into
    n_params = len(_names_under(target, inside))
    if not n_params:
      raise ValueError(f"train.init_from: this {'method state' if in_method else 'network'} has no parameters "
                       f"under {inside!r}")
    step, params, batch_stats = latest_weights(workdir)
    where = f"the checkpoint of {workdir} (step {step})"
    new = copy_subtree(target, params, into=inside, source_path=source_path, where=where)
    if in_method:
      state = state.replace(method_state=new)
    else:
      new_stats = state.batch_stats
      if _names_under(state.batch_stats, into):
        new_stats = copy_subtree(state.batch_stats, batch_stats, into=into, source_path=source_path, where=where)
      state = state.replace(params=new, batch_stats=new_stats)
    log.info("train.init_from: %s <- %s:%s (step %d, %d arrays)", into or "the network", workdir,
             source_path or "/", step, n_params)
  return state
