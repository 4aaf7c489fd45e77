"""Parameter masks: which parameters an optimizer trains (frozen encoders, adapters)."""
from __future__ import annotations

from typing import Sequence

import jax
import optax



def path_name(path) -> str:
  """A pytree key path as 'params/encoder/conv1/kernel' (dict keys, attributes, indices; an
  nnx.Variable's "value" payload left out). What `sharding.rules` regexes and masks match."""
  parts = []
  for key in path:
    name = getattr(key, "key", getattr(key, "name", getattr(key, "idx", None)))
    if name is None:
      name = str(key)
    if name == "value":
      continue
    parts.append(str(name))
  return "/".join(parts)


def trainable_labels(params, *, freeze: Sequence[str] = (), train_only: Sequence[str] = (),
                     always: Sequence[str] = ()):
  """"trained" / "frozen" for every leaf of `params`, by its path ("backbone/encoder/...").

  A leaf is frozen when its path contains one of `freeze`, or when `train_only` is given and
  its path contains none of them; a path starting with one of `always` (a new head) is trained.
  """
  def label(path, _):
    name = path_name(path)
    if any(name.startswith(a) for a in always):
      return "trained"
    frozen = any(f in name for f in freeze) or bool(train_only) and not any(t in name for t in train_only)
    return "frozen" if frozen else "trained"

  return jax.tree_util.tree_map_with_path(label, params)


def masked(tx: optax.GradientTransformation, *, freeze: Sequence[str] = (), train_only: Sequence[str] = (),
           always: Sequence[str] = ()) -> optax.GradientTransformation:
  """`tx` on the trained parameters, zero updates (and no optimizer state) for the frozen ones."""
  if not freeze and not train_only:
    return tx
  return optax.multi_transform({"trained": tx, "frozen": optax.set_to_zero()},
                               lambda p: trainable_labels(p, freeze=freeze, train_only=train_only, always=always))


def count_trained(params, **mask) -> int:
  """Elements of the parameters `trainable_labels(params, **mask)` marks "trained"."""
  labels = trainable_labels(params, **mask)
  return int(sum(x.size for x, t in zip(jax.tree.leaves(params), jax.tree.leaves(labels)) if t == "trained"))
