"""Weights in and out in the layouts of the PyTorch models users compare against.

`export_encoder(model, directory)` writes the encoder inside an sslax network (a ResNet, ViT,
BERT, GPT or wav2vec 2.0) as `model.safetensors` + `config.json`:

| sslax       | written as                                   | load in PyTorch with                        |
|-------------|----------------------------------------------|---------------------------------------------|
| ResNet      | torchvision `resnet18/34/50` state dict      | `torchvision.models.resnet18()` + `load_state_dict` |
| ViT         | timm `VisionTransformer` state dict          | `timm.models.vision_transformer.VisionTransformer(**config)` |
| BERT        | Hugging Face `BertModel` (`BertForPreTraining` with heads) | `transformers.BertModel.from_pretrained(dir)` |
| GPT         | Hugging Face `GPT2LMHeadModel`               | `transformers.GPT2LMHeadModel.from_pretrained(dir)` |
| Wav2Vec2    | Hugging Face `Wav2Vec2Model` (`Wav2Vec2ForPreTraining` with heads) | `transformers.Wav2Vec2Model.from_pretrained(dir)` |

`load_pretrained(model, path)` (`model.init_from=path` in a config) reads the same formats back:
such a directory (ours or one Hugging Face wrote: `model.safetensors` or `pytorch_model.bin`), or
a torchvision / timm / DINO state dict file (`.safetensors`, or `.pth` / `.pt` / `.bin` with
PyTorch installed). Every tensor's name and shape is checked before the first one is copied.
The core never imports PyTorch; the safetensors files are written and read with NumPy. This
module is what those libraries lack: neither Flax nor safetensors knows torchvision's, timm's or
Hugging Face's names.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from flax import nnx

from sslax.models.language import BERT, GPT
from sslax.models.resnet import ResNet
from sslax.models.vit import ViT
from sslax.models.wav2vec2 import Wav2Vec2
from sslax.weights import bert, gpt2, resnet, vit, wav2vec2
from sslax.weights.layout import Tensor, load, to_torch

LAYOUTS = {ResNet: resnet, ViT: vit, BERT: bert, GPT: gpt2, Wav2Vec2: wav2vec2}
HF_TYPES = {bert.MODEL_TYPE: BERT, gpt2.MODEL_TYPE: GPT, wav2vec2.MODEL_TYPE: Wav2Vec2}
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"
_WRAPPERS = ("module.", "backbone.", "encoder.", "model.")  # DDP, DINO / solo-learn, Lightning prefixes


def find_encoder(model: nnx.Module, path: str | None = None) -> tuple[str, nnx.Module]:
  """(path, module): the one ResNet / ViT / BERT / GPT / Wav2Vec2 inside `model` (itself
  included), or the one at `path` ("encoder", "image_encoder", ...) when there are several."""
  found = [("/".join(str(p) for p in where), node) for where, node in nnx.iter_graph(model)
           if type(node) in LAYOUTS]
  found = [(p, n) for p, n in found if not any(p != q and p.startswith(q + "/") for q, _ in found)]
  if path is not None:
    for p, n in found:
      if p == path.replace(".", "/"):
        return p, n
    raise ValueError(f"model.init_from_path: expected one of {[p for p, _ in found]}, got {path!r}")
  if len(found) != 1:
    raise ValueError(f"model.init_from: expected one encoder (ResNet, ViT, BERT, GPT or Wav2Vec2) in the network, "
                     f"found {len(found)}: {[p or '(the network)' for p, _ in found]}; name one with "
                     "model.init_from_path")
  return found[0]


def _layout(encoder):
  return LAYOUTS[type(encoder)]


def _named(module, encoder, heads: bool, prefixed: bool = True) -> dict[str, Tensor]:
  """The layout's tensors by torch name; `prefixed`: under the prefix the exported class uses
  ("bert.", "transformer.", "wav2vec2."), which `adapt` strips on the way in."""
  prefix = getattr(module, "prefix", lambda heads: "")(heads) if prefixed else ""
  head_names = getattr(module, "HEADS", ())
  out = {}
  for t in module.tensors(encoder, heads=heads):
    t.names = tuple(n if n.startswith(head_names) else prefix + n for n in t.names)
    out[t.names[0]] = t
  return out


def export_encoder(model: nnx.Module, directory: str, *, heads: bool = False, path: str | None = None,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
  """Writes the encoder of `model` to `directory` (created) as `model.safetensors` + `config.json`
  in its PyTorch layout (module docstring); `heads`: also the pretraining heads that layout has
  (BERT's MLM / NSP, wav2vec 2.0's quantizer and projections). `meta` (the run, step, ...) goes
  into `sslax.json` beside them. Returns {"layout", "path", "num_tensors", "config"}."""
  from safetensors.numpy import save_file

  where, encoder = find_encoder(model, path)
  module = _layout(encoder)
  tensors = _named(module, encoder, heads)
  state = to_torch(list(tensors.values()))
  state.update(module.extra_tensors(encoder))
  cfg = module.config(encoder, heads=heads)
  os.makedirs(directory, exist_ok=True)
  save_file(state, os.path.join(directory, WEIGHTS_FILE), metadata={"format": "pt"})
  with open(os.path.join(directory, CONFIG_FILE), "w") as f:
    json.dump(cfg, f, indent=2)
  layout = module.LAYOUT
  with open(os.path.join(directory, "sslax.json"), "w") as f:
    json.dump({"layout": layout, "encoder_path": where, "heads": heads, **(meta or {})}, f, indent=2)
  return {"layout": layout, "path": where, "num_tensors": len(state), "config": cfg}


def read_state_dict(file: str, what: str = "model.init_from") -> dict[str, np.ndarray]:
  """name -> array from a .safetensors file (NumPy only) or a PyTorch pickle (.pth/.pt/.bin; needs
  PyTorch, loaded with weights_only=True). Nested checkpoints ({"state_dict": ...}, {"model": ...},
  DINO's {"teacher": ...}) are unwrapped."""
  if not os.path.isfile(file):
    raise ValueError(f"{what}: expected a weights file or directory, got {file!r} (not found)")
  if file.endswith(".safetensors"):
    from safetensors.numpy import load_file

    return dict(load_file(file))
  try:
    import torch
  except ImportError as e:
    raise ValueError(f"{what}: {file} is a PyTorch pickle, which needs PyTorch (pip install torch), or "
                     "convert it to .safetensors") from e
  obj = torch.load(file, map_location="cpu", weights_only=True)
  for key in ("state_dict", "model", "teacher", "module"):
    if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
      obj = obj[key]
  return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in obj.items()
          if hasattr(v, "numpy")}


def _strip_wrappers(state: dict[str, np.ndarray], expected: set[str]) -> dict[str, np.ndarray]:
  """Drops the prefixes that training wrappers add ("module.", "backbone.", ...) while they make the
  names match the layout's."""
  while state and not (set(state) & expected):
    for p in _WRAPPERS:
      if all(k.startswith(p) for k in state if not k.startswith(("head.", "fc."))) and any(
          k.startswith(p) for k in state):
        state = {k[len(p):]: v for k, v in state.items() if k.startswith(p)}
        break
    else:
      break
  return state


def _hf_directory(path: str) -> tuple[dict, dict[str, np.ndarray]]:
  cfg_file = os.path.join(path, CONFIG_FILE)
  if not os.path.exists(cfg_file):
    raise ValueError(f"model.init_from: expected {CONFIG_FILE} in the directory {path!r}, found none")
  with open(cfg_file) as f:
    cfg = json.load(f)
  for name in (WEIGHTS_FILE, "pytorch_model.bin"):
    if os.path.exists(os.path.join(path, name)):
      return cfg, read_state_dict(os.path.join(path, name))
  raise ValueError(f"model.init_from: expected {WEIGHTS_FILE} or pytorch_model.bin in {path!r}, found neither")


def check_dims(module, encoder, cfg: dict, source: str) -> None:
  """Each sslax model.* dimension against the checkpoint's config: a ValueError naming the field."""
  want, have = module.dims(cfg), module.model_dims(encoder)
  for key, value in want.items():
    if have.get(key) != value:
      raise ValueError(f"model.{key}: expected {value!r} ({source}), got {have.get(key)!r}")


def load_pretrained(model: nnx.Module, path: str, *, encoder_path: str | None = None) -> dict[str, Any]:
  """Copies the weights at `path` (module docstring) into the encoder of `model`, in place.

  Checks the checkpoint's kind against the encoder (a BERT directory into a ResNet is an error),
  its config.json dimensions against the model's (`model.<field>: expected ..., got ...`), and
  every tensor's name and shape, before writing any. Returns {"layout", "loaded", "missing"
  (pretraining heads the checkpoint lacks), "unused"}.
  """
  where, encoder = find_encoder(model, encoder_path)
  module = _layout(encoder)
  if os.path.isdir(path):
    cfg, state = _hf_directory(path)
    source = os.path.join(path, CONFIG_FILE)
    kind = cfg.get("model_type") or cfg.get("layout")
    if kind in HF_TYPES:
      if HF_TYPES[kind] is not type(encoder):
        raise ValueError(f"model.init_from: {source} holds a {kind!r} model, the network's encoder is a "
                         f"{type(encoder).__name__}")
      module.check_config(cfg, source)
      check_dims(module, encoder, cfg, source)
      state = module.adapt(encoder, cfg, state)
    elif kind not in (resnet.LAYOUT, vit.LAYOUT):
      raise ValueError(f"model.init_from: expected model_type one of {sorted(HF_TYPES)} (or an sslax "
                       f"torchvision / timm export) in {source}, got {kind!r}")
  else:
    state, source = read_state_dict(path), path
  tensors = list(_named(module, encoder, heads=bool(getattr(module, "HEADS", ())), prefixed=False).values())
  expected = {n for t in tensors for n in t.names}
  state = _strip_wrappers(state, expected)
  if not set(state) & expected:
    raise ValueError(f"model.init_from: {source} has none of the {module.LAYOUT} "
                     f"names the {type(encoder).__name__} encoder expects (e.g. {sorted(expected)[0]!r}); its "
                     f"first names are {sorted(state)[:3]}")
  if hasattr(module, "check"):
    module.check(encoder, state, source)
  info = load(tensors, state, source=source, optional=getattr(module, "HEADS", ()))
  info["unused"] = [n for n in info["unused"] if not n.endswith(("num_batches_tracked", "position_ids"))
                    and not n.startswith(("head.", "fc."))]
  return {"layout": module.LAYOUT, "encoder_path": where, **info}
