"""A name map between an NNX model's variables and a PyTorch `state_dict`, applied both ways.

Each architecture (`sslax.weights.resnet`, `.vit`, `.bert`, `.gpt2`, `.wav2vec2`) lists its
`Tensor`s once; `to_torch` and `load` both read that list, so an export followed by an import is
the identity by construction (the round-trip test checks it bit for bit). PyTorch itself is never
imported: tensors are NumPy arrays, written and read as safetensors.

Layout conversions (`kind`):

```text
  "copy"     same array (embeddings, norms' scale/bias, biases, GPT-2's Conv1D weights [in, out])
  "linear"   ours [in, out] <-> torch `nn.Linear.weight` [out, in]
  "conv"     ours [*kernel, in, out] <-> torch [out, in, *kernel] (1-D and 2-D convolutions)
  "split"    one of ours [..., n * d] <-> n torch tensors (q, k, v): `linear` per part for a kernel,
             plain slices for a bias
  "reshape"  the same values in another shape (wav2vec 2.0's codebook and weight-norm gain)
```

"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx

KINDS = ("copy", "linear", "conv", "split", "reshape")


@dataclasses.dataclass
class Tensor:
  """`variable` (an nnx.Variable of the model) stored as the torch tensors `names`."""
  variable: nnx.Variable
  names: tuple[str, ...]
  kind: str = "copy"
  torch_shape: tuple[int, ...] | None = None  # "reshape": the torch tensor's shape

  def __post_init__(self):
    if isinstance(self.names, str):
      self.names = (self.names,)
    if self.kind not in KINDS:
      raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")

  def to_torch(self) -> dict[str, np.ndarray]:
    value = np.asarray(self.variable.get_value())
    if self.kind == "copy":
      return {self.names[0]: value}
    if self.kind == "linear":
      return {self.names[0]: value.T}
    if self.kind == "conv":
      return {self.names[0]: np.moveaxis(value, (-1, -2), (0, 1))}
    if self.kind == "reshape":
      return {self.names[0]: value.reshape(self.torch_shape)}
    parts = np.split(value, len(self.names), axis=-1)
    return {n: (p.T if value.ndim == 2 else p) for n, p in zip(self.names, parts)}

  def from_torch(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
    if self.kind == "copy":
      return arrays[0]
    if self.kind == "linear":
      return arrays[0].T
    if self.kind == "conv":
      return np.moveaxis(arrays[0], (0, 1), (-1, -2))
    if self.kind == "reshape":
      return arrays[0].reshape(self.variable.get_value().shape)
    return np.concatenate([a.T if a.ndim == 2 else a for a in arrays], axis=-1)

  def expected_torch_shapes(self) -> dict[str, tuple[int, ...]]:
    """The torch shape of each name, computed from our variable's shape."""
    shape = tuple(self.variable.get_value().shape)
    if self.kind == "copy":
      return {self.names[0]: shape}
    if self.kind == "linear":
      return {self.names[0]: shape[::-1]}
    if self.kind == "conv":
      return {self.names[0]: (shape[-1], shape[-2], *shape[:-2])}
    if self.kind == "reshape":
      return {self.names[0]: tuple(self.torch_shape)}
    part = (*shape[:-1], shape[-1] // len(self.names))
    return {n: (part[::-1] if len(shape) == 2 else part) for n in self.names}


def linear(module: nnx.Linear, name: str) -> list[Tensor]:
  """A Linear as torch's `<name>.weight` / `<name>.bias`."""
  out = [Tensor(module.kernel, f"{name}.weight", "linear")]
  if module.bias is not None:
    out.append(Tensor(module.bias, f"{name}.bias"))
  return out


def norm(module, name: str, *, running: bool = False) -> list[Tensor]:
  """A LayerNorm / GroupNorm / BatchNorm's scale and bias as `weight` / `bias`; `running`: also a
  BatchNorm's statistics as `running_mean` / `running_var`."""
  out = [Tensor(module.scale, f"{name}.weight"), Tensor(module.bias, f"{name}.bias")]
  if running:
    out += [Tensor(module.mean, f"{name}.running_mean"), Tensor(module.var, f"{name}.running_var")]
  return out


def strip_prefix(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  """`state` with `prefix` dropped from the names that start with it (the `bert.` of a
  `BertForPreTraining`, the `transformer.` of a `GPT2LMHeadModel`, ...)."""
  return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def first_rows(state: dict[str, np.ndarray], name: str, n: int) -> dict[str, np.ndarray]:
  """`state` with tensor `name` cut to its first `n` rows when it has more (a position table of
  512 into a model built for shorter inputs)."""
  if name in state and state[name].shape[0] > n:
    state = {**state, name: state[name][:n]}
  return state


def to_torch(tensors: Sequence[Tensor]) -> dict[str, np.ndarray]:
  """name -> float32 NumPy array in torch's layout, contiguous (safetensors needs it)."""
  out = {}
  for t in tensors:
    for name, value in t.to_torch().items():
      out[name] = np.ascontiguousarray(value, dtype=np.float32)
  return out


def load(tensors: Sequence[Tensor], state: dict[str, np.ndarray], *, source: str,
         optional: Sequence[str] = ()) -> dict[str, list[str]]:
  """Sets every variable of `tensors` from `state` (torch names -> arrays), after checking that
  every name is present with the expected shape: nothing is written unless all of them are.

  Names starting with a prefix in `optional` may be absent (a `BertModel` has no MLM head); their
  variables keep their values. Raises ValueError naming the tensor, its expected and actual shape,
  and `source`. Returns {"loaded": names, "missing": optional names absent, "unused": names of
  `state` nothing read}.
  """
  missing, problems, todo = [], [], []
  for t in tensors:
    expected = t.expected_torch_shapes()
    absent = [n for n in expected if n not in state]
    if absent:
      if all(n.startswith(tuple(optional)) for n in absent) and optional:
        missing += absent
        continue
      problems.append(f"{absent[0]} is missing")
      continue
    for name, shape in expected.items():
      actual = tuple(np.shape(state[name]))
      if actual != shape:
        problems.append(f"{name} has shape {actual}, expected {shape}")
    todo.append(t)
  if problems:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise ValueError(f"model.init_from: {source}: {problems[0]}{more}")
  used = set()
  for t in todo:
    value = t.from_torch([np.asarray(state[n], np.float32) for n in t.names])
    old = t.variable.get_value()
    t.variable.set_value(jnp.asarray(value, dtype=old.dtype))
    used.update(t.names)
  unused = sorted(set(state) - used)
  return {"loaded": sorted(used), "missing": missing, "unused": unused}
