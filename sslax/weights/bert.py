"""sslax `BERT` <-> Hugging Face `BertModel` / `BertForPreTraining` directories.

Names (PyTorch `nn.Linear` stores [out, in]; ours are [in, out]):

```text
  embeddings.{word,position,token_type}_embeddings  <-> {tok,pos,type}_embed
  embeddings.LayerNorm                              <-> embed_norm
  encoder.layer.i.attention.self.{query,key,value}  <-> encoder.layers[i].attn.qkv (q | k | v)
  encoder.layer.i.attention.output.dense / LayerNorm <-> attn.out / norm1
  encoder.layer.i.intermediate.dense / output.dense  <-> fc1 / fc2, output.LayerNorm <-> norm2
  pooler.dense <-> pooler; with heads, under `bert.`: cls.predictions.transform.dense / LayerNorm
  <-> mlm_dense / mlm_norm, cls.predictions.bias <-> mlm_bias (the decoder is tied to the word
  embeddings), cls.seq_relationship <-> nsp.
```

sslax's BERT has no dropout on attention probabilities: the exported config says 0.0.
`bert_from_hf` builds a `BERT` from such a directory (`model.hf_weights` in the BERT configs).
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from flax import nnx

from sslax.models.language import BERT
from sslax.weights.layout import Tensor, first_rows, linear, norm, strip_prefix

MODEL_TYPE = LAYOUT = "bert"
HEADS = ("cls.",)


def tensors(model: BERT, heads: bool = False) -> list[Tensor]:
  out = [Tensor(model.tok_embed.embedding, "embeddings.word_embeddings.weight"),
         Tensor(model.pos_embed.embedding, "embeddings.position_embeddings.weight"),
         Tensor(model.type_embed.embedding, "embeddings.token_type_embeddings.weight"),
         *norm(model.embed_norm, "embeddings.LayerNorm")]
  for i, layer in enumerate(model.encoder.layers):
    p = f"encoder.layer.{i}"
    out.append(Tensor(layer.attn.qkv.kernel, tuple(f"{p}.attention.self.{n}.weight" for n in ("query", "key", "value")),
                      "split"))
    out.append(Tensor(layer.attn.qkv.bias, tuple(f"{p}.attention.self.{n}.bias" for n in ("query", "key", "value")),
                      "split"))
    out += linear(layer.attn.out, f"{p}.attention.output.dense") + norm(layer.norm1, f"{p}.attention.output.LayerNorm")
    out += linear(layer.fc1, f"{p}.intermediate.dense") + linear(layer.fc2, f"{p}.output.dense")
    out += norm(layer.norm2, f"{p}.output.LayerNorm")
  out += linear(model.pooler, "pooler.dense")
  if heads:
    out += linear(model.mlm_dense, "cls.predictions.transform.dense")
    out += norm(model.mlm_norm, "cls.predictions.transform.LayerNorm")
    out += [Tensor(model.mlm_bias, "cls.predictions.bias"), *linear(model.nsp, "cls.seq_relationship")]
  return out


def prefix(heads: bool) -> str:
  return "bert." if heads else ""


def extra_tensors(model: BERT) -> dict[str, np.ndarray]:
  return {}


def config(model: BERT, heads: bool = False) -> dict:
  layer = model.encoder.layers[0]
  return {"architectures": ["BertForPreTraining" if heads else "BertModel"], "model_type": MODEL_TYPE,
          "vocab_size": model.tok_embed.num_embeddings, "hidden_size": model.num_features,
          "num_hidden_layers": len(model.encoder.layers), "num_attention_heads": model.encoder.num_heads,
          "intermediate_size": layer.fc1.out_features, "hidden_act": "gelu",
          "max_position_embeddings": model.pos_embed.num_embeddings,
          "type_vocab_size": model.type_embed.num_embeddings, "layer_norm_eps": float(model.embed_norm.epsilon),
          "hidden_dropout_prob": float(model.rate), "attention_probs_dropout_prob": 0.0,
          "initializer_range": 0.02, "pad_token_id": 0, "position_embedding_type": "absolute",
          "tie_word_embeddings": True}


def dims(cfg: dict) -> dict:
  """sslax `model.*` fields from a Hugging Face BERT config.json."""
  return {"vocab_size": cfg["vocab_size"], "dim": cfg["hidden_size"], "depth": cfg["num_hidden_layers"],
          "num_heads": cfg["num_attention_heads"], "mlp_dim": cfg["intermediate_size"]}


def model_dims(model: BERT) -> dict:
  return {"vocab_size": model.tok_embed.num_embeddings, "dim": model.num_features,
          "depth": len(model.encoder.layers), "num_heads": model.encoder.num_heads,
          "mlp_dim": model.encoder.layers[0].fc1.out_features}


def check_config(cfg: dict, source: str) -> None:
  if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
    raise ValueError(f"model.init_from: expected hidden_act 'gelu' and absolute positions in {source}, got "
                     f"{cfg.get('hidden_act')!r} / {cfg.get('position_embedding_type')!r}")


def adapt(model: BERT, cfg: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Layer-norm eps from the config; the first max_len position embeddings when the checkpoint has
  more (BERT's 512 into a model built for shorter inputs); old `gamma`/`beta` names."""
  eps = float(cfg.get("layer_norm_eps", 1e-12))
  for m in (model.embed_norm, model.mlm_norm, *[n for l in model.encoder.layers for n in (l.norm1, l.norm2)]):
    m.epsilon = eps
  out = {name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias"): value
         for name, value in strip_prefix(state, "bert.").items()}
  return first_rows(out, "embeddings.position_embeddings.weight", model.pos_embed.num_embeddings)


def read_hf_config(path: str) -> dict[str, Any]:
  file = os.path.join(path, "config.json")
  if not os.path.exists(file):
    raise ValueError(f"model.hf_weights: expected a Hugging Face BERT directory with config.json, got {path!r}")
  with open(file) as f:
    config = json.load(f)
  if config.get("model_type", "bert") != "bert":
    raise ValueError(f"model.hf_weights: expected model_type 'bert' in {file}, got {config.get('model_type')!r}")
  return config


def bert_from_hf(path: str, *, dropout: float = 0.0, max_len: int | None = None, rngs: nnx.Rngs | None = None,
                 model: BERT | None = None) -> tuple[BERT, dict[str, Any]]:
  """A `BERT` holding the weights of the Hugging Face BERT directory `path`.

  Pass `model` to load into an existing network (its dimensions must match
  config.json; each mismatch is an error naming the field). Tensors absent
  from the checkpoint (a `BertModel` has no MLM head) keep their
  initialization and are listed in the returned info.

  Returns:
    (model, {"config": config.json, "loaded": [names], "missing": [our parameters left as initialized]}).
  """
  from sslax.weights import load_pretrained

  config = read_hf_config(path)
  if model is None:
    model = BERT(**dims(config), max_len=max_len or config["max_position_embeddings"],
                 type_vocab_size=config.get("type_vocab_size", 2), dropout=dropout, rngs=rngs or nnx.Rngs(0))
  info = load_pretrained(model, path)
  return model, {"config": config, "loaded": info["loaded"], "missing": info["missing"]}
