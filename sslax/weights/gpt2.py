"""sslax `GPT` <-> Hugging Face `GPT2LMHeadModel` / `GPT2Model` directories (Radford et al. 2019).

GPT-2's linear layers are `Conv1D`s whose weights are stored [in, out], as ours, so they copy:

```text
  transformer.wte / wpe <-> tok_embed / pos_embed; transformer.h.i.ln_1 / ln_2 <-> norm1 / norm2
  h.i.attn.c_attn (q | k | v) <-> attn.qkv; h.i.attn.c_proj <-> attn.out; h.i.mlp.c_fc / c_proj
  <-> fc1 / fc2; transformer.ln_f <-> decoder.final_norm; lm_head tied to wte, as ours.
```

OpenAI's checkpoints use the tanh GELU (`gelu_new`): import them with `model.gelu='tanh'`; sslax's
own GPT uses the exact one and exports `activation_function: "gelu"`.
"""
from __future__ import annotations

import numpy as np

from sslax.models.language import GPT
from sslax.weights.layout import Tensor, first_rows, norm, strip_prefix

MODEL_TYPE = LAYOUT = "gpt2"
HEADS = ()
_ACT = {"gelu": "exact", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}


def tensors(model: GPT, heads: bool = False) -> list[Tensor]:
  del heads  # the LM head is the tied embedding
  out = [Tensor(model.tok_embed.embedding, "wte.weight"), Tensor(model.pos_embed.embedding, "wpe.weight")]
  for i, layer in enumerate(model.decoder.layers):
    p = f"h.{i}"
    out += norm(layer.norm1, f"{p}.ln_1") + norm(layer.norm2, f"{p}.ln_2")
    for ours, theirs in ((layer.attn.qkv, "attn.c_attn"), (layer.attn.out, "attn.c_proj"),
                         (layer.fc1, "mlp.c_fc"), (layer.fc2, "mlp.c_proj")):
      out += [Tensor(ours.kernel, f"{p}.{theirs}.weight"), Tensor(ours.bias, f"{p}.{theirs}.bias")]
  return out + norm(model.decoder.final_norm, "ln_f")


def prefix(heads: bool) -> str:
  return "transformer."


def extra_tensors(model: GPT) -> dict[str, np.ndarray]:
  return {}


def config(model: GPT, heads: bool = False) -> dict:
  layer = model.decoder.layers[0]
  return {"architectures": ["GPT2LMHeadModel"], "model_type": MODEL_TYPE,
          "vocab_size": model.tok_embed.num_embeddings, "n_positions": model.max_len, "n_ctx": model.max_len,
          "n_embd": model.num_features, "n_layer": len(model.decoder.layers), "n_head": model.decoder.num_heads,
          "n_inner": layer.fc1.out_features,
          "activation_function": "gelu_new" if layer.approximate_gelu else "gelu",
          "layer_norm_epsilon": float(layer.norm1.epsilon), "resid_pdrop": float(model.rate),
          "embd_pdrop": float(model.rate), "attn_pdrop": 0.0, "initializer_range": 0.02,
          "scale_attn_weights": True, "tie_word_embeddings": True}


def dims(cfg: dict) -> dict:
  return {"vocab_size": cfg["vocab_size"], "dim": cfg["n_embd"], "depth": cfg["n_layer"], "num_heads": cfg["n_head"],
          "mlp_dim": cfg.get("n_inner") or 4 * cfg["n_embd"],
          "gelu": _ACT.get(cfg.get("activation_function", "gelu_new"), cfg.get("activation_function"))}


def model_dims(model: GPT) -> dict:
  layer = model.decoder.layers[0]
  return {"vocab_size": model.tok_embed.num_embeddings, "dim": model.num_features,
          "depth": len(model.decoder.layers), "num_heads": model.decoder.num_heads,
          "mlp_dim": layer.fc1.out_features, "gelu": "tanh" if layer.approximate_gelu else "exact"}


def check_config(cfg: dict, source: str) -> None:
  act = cfg.get("activation_function", "gelu_new")
  if act not in _ACT:
    raise ValueError(f"model.init_from: expected activation_function one of {sorted(_ACT)} in {source}, got {act!r}")
  for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
    if cfg.get(flag):
      raise ValueError(f"model.init_from: expected {flag} false in {source} (sslax's attention has neither), got true")
  if cfg.get("scale_attn_weights", True) is not True:
    raise ValueError(f"model.init_from: expected scale_attn_weights true in {source}, got false")


def adapt(model: GPT, cfg: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  eps = float(cfg.get("layer_norm_epsilon", 1e-5))
  for layer in model.decoder.layers:
    layer.norm1.epsilon = layer.norm2.epsilon = eps
  model.decoder.final_norm.epsilon = eps
  out = strip_prefix(state, "transformer.")
  head = out.pop("lm_head.weight", None)
  if head is not None and "wte.weight" in out and not np.array_equal(head, out["wte.weight"]):
    raise ValueError("model.init_from: lm_head.weight differs from wte.weight (an untied head); sslax's GPT "
                     "ties its logits to the token embeddings")
  return first_rows(out, "wpe.weight", model.pos_embed.num_embeddings)
