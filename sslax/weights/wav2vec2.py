"""sslax `Wav2Vec2` <-> Hugging Face `Wav2Vec2Model` / `Wav2Vec2ForPreTraining` directories.

The BASE layout (`do_stable_layer_norm: false`: post-norm layers, the encoder's layer norm
before them), as fairseq's BASE and sslax's model. Names:

```text
  feature_extractor.conv_layers.i.conv [out, in, k] <-> feature_encoder.convs[i] [k, in, out]
  feature_extractor.conv_layers.i.layer_norm <-> feature_encoder.norms[i] (GroupNorm on layer 0,
    or a LayerNorm on every layer with feat_extract_norm "layer")
  feature_projection.layer_norm / projection <-> layer_norm / post_extract_proj; masked_spec_embed <-> mask_emb
  encoder.pos_conv_embed.conv weight norm (dim=2): parametrizations.weight.original0 [1, 1, k] <-> pos_conv.g [k],
    original1 [out, in / groups, k] <-> pos_conv.v [k, in / groups, out] (older files: weight_g / weight_v)
  encoder.layer_norm <-> encoder_norm; encoder.layers.i.attention.{q,k,v}_proj <-> attn.qkv (q | k | v),
    out_proj <-> attn.out, layer_norm <-> norm1, feed_forward.intermediate_dense / output_dense <-> fc1 / fc2,
    final_layer_norm <-> norm2
  with heads (`Wav2Vec2ForPreTraining`, the model under `wav2vec2.`): quantizer.codevectors [1, G * V, d]
    <-> quantizer.codevars [G, V, d], quantizer.weight_proj, project_q, project_hid <-> final_proj.
```

"""
from __future__ import annotations

import numpy as np

from sslax.models.wav2vec2 import MaskedGroupNorm, Wav2Vec2
from sslax.weights.layout import Tensor, linear, norm, strip_prefix

MODEL_TYPE = LAYOUT = "wav2vec2"
HEADS = ("quantizer.", "project_q.", "project_hid.")
_POS = "encoder.pos_conv_embed.conv"


def tensors(model: Wav2Vec2, heads: bool = False) -> list[Tensor]:
  fe = model.feature_encoder
  out = []
  for i, (conv, n) in enumerate(zip(fe.convs, fe.norms)):
    p = f"feature_extractor.conv_layers.{i}"
    out.append(Tensor(conv.kernel, f"{p}.conv.weight", "conv"))
    if conv.bias is not None:
      out.append(Tensor(conv.bias, f"{p}.conv.bias"))
    if n is not None:
      out += norm(n, f"{p}.layer_norm")
  out += norm(model.layer_norm, "feature_projection.layer_norm") + linear(model.post_extract_proj,
                                                                          "feature_projection.projection")
  out.append(Tensor(model.mask_emb, "masked_spec_embed"))
  k = model.pos_conv.kernel
  out += [Tensor(model.pos_conv.g, f"{_POS}.parametrizations.weight.original0", "reshape", (1, 1, k)),
          Tensor(model.pos_conv.v, f"{_POS}.parametrizations.weight.original1", "conv"),
          Tensor(model.pos_conv.bias, f"{_POS}.bias")]
  out += norm(model.encoder_norm, "encoder.layer_norm")
  for i, layer in enumerate(model.encoder.layers):
    p = f"encoder.layers.{i}"
    out.append(Tensor(layer.attn.qkv.kernel, tuple(f"{p}.attention.{n}_proj.weight" for n in "qkv"), "split"))
    out.append(Tensor(layer.attn.qkv.bias, tuple(f"{p}.attention.{n}_proj.bias" for n in "qkv"), "split"))
    out += linear(layer.attn.out, f"{p}.attention.out_proj") + norm(layer.norm1, f"{p}.layer_norm")
    out += linear(layer.fc1, f"{p}.feed_forward.intermediate_dense")
    out += linear(layer.fc2, f"{p}.feed_forward.output_dense") + norm(layer.norm2, f"{p}.final_layer_norm")
  if heads:
    q = model.quantizer
    out.append(Tensor(q.codevars, "quantizer.codevectors", "reshape",
                      (1, q.num_groups * q.num_vars, q.codevars.get_value().shape[-1])))
    out += linear(q.weight_proj, "quantizer.weight_proj") + linear(model.project_q, "project_q")
    out += linear(model.final_proj, "project_hid")
  return out


def prefix(heads: bool) -> str:
  return "wav2vec2." if heads else ""


def extra_tensors(model: Wav2Vec2) -> dict[str, np.ndarray]:
  return {}


def config(model: Wav2Vec2, heads: bool = False) -> dict:
  fe, layer, q = model.feature_encoder, model.encoder.layers[0], model.quantizer
  group = isinstance(fe.norms[0], MaskedGroupNorm)
  return {"architectures": ["Wav2Vec2ForPreTraining" if heads else "Wav2Vec2Model"], "model_type": MODEL_TYPE,
          "conv_dim": [c[0] for c in fe.conv_layers], "conv_kernel": [c[1] for c in fe.conv_layers],
          "conv_stride": [c[2] for c in fe.conv_layers], "conv_bias": fe.convs[0].bias is not None,
          "feat_extract_norm": "group" if group else "layer", "feat_extract_activation": "gelu",
          "hidden_size": model.num_features, "num_hidden_layers": len(model.encoder.layers),
          "num_attention_heads": model.encoder.num_heads, "intermediate_size": layer.fc1.out_features,
          "hidden_act": "gelu", "num_conv_pos_embeddings": model.pos_conv.kernel,
          "num_conv_pos_embedding_groups": model.pos_conv.groups, "do_stable_layer_norm": False,
          "layer_norm_eps": float(model.encoder_norm.epsilon), "num_codevector_groups": q.num_groups,
          "num_codevectors_per_group": q.num_vars,
          "codevector_dim": q.num_groups * q.codevars.get_value().shape[-1],
          "proj_codevector_dim": model.final_proj.out_features, "hidden_dropout": float(layer.rate),
          "activation_dropout": float(layer.activation_rate), "attention_dropout": 0.0,
          "feat_proj_dropout": float(model.rates[0]), "feat_quantizer_dropout": float(model.rates[1]),
          "apply_spec_augment": True, "mask_time_prob": 0.05}


def dims(cfg: dict) -> dict:
  return {"conv_layers": [list(c) for c in zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"])],
          "extractor_mode": {"group": "group_norm", "layer": "layer_norm"}.get(cfg.get("feat_extract_norm", "group")),
          "dim": cfg["hidden_size"], "depth": cfg["num_hidden_layers"], "num_heads": cfg["num_attention_heads"],
          "mlp_dim": cfg["intermediate_size"], "pos_conv_kernel": cfg["num_conv_pos_embeddings"],
          "pos_conv_groups": cfg["num_conv_pos_embedding_groups"]}


def model_dims(model: Wav2Vec2) -> dict:
  fe = model.feature_encoder
  return {"conv_layers": [list(c) for c in fe.conv_layers],
          "extractor_mode": "group_norm" if isinstance(fe.norms[0], MaskedGroupNorm) else "layer_norm",
          "dim": model.num_features, "depth": len(model.encoder.layers), "num_heads": model.encoder.num_heads,
          "mlp_dim": model.encoder.layers[0].fc1.out_features, "pos_conv_kernel": model.pos_conv.kernel,
          "pos_conv_groups": model.pos_conv.groups}


def check_config(cfg: dict, source: str) -> None:
  if cfg.get("do_stable_layer_norm"):
    raise ValueError(f"model.init_from: {source} is a pre-norm wav2vec 2.0 (do_stable_layer_norm true, the LARGE "
                     "LV-60 layout); sslax's Wav2Vec2 is the BASE post-norm layout")
  for field in ("hidden_act", "feat_extract_activation"):
    if cfg.get(field, "gelu") != "gelu":
      raise ValueError(f"model.init_from: expected {field} 'gelu' in {source}, got {cfg.get(field)!r}")
  if cfg.get("conv_bias"):
    raise ValueError(f"model.init_from: expected conv_bias false in {source} (sslax's feature encoder "
                     "convolutions have no bias), got true")


def adapt(model: Wav2Vec2, cfg: dict, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  eps = float(cfg.get("layer_norm_eps", 1e-5))
  for n in (model.layer_norm, model.encoder_norm, *[n for l in model.encoder.layers for n in (l.norm1, l.norm2)]):
    n.epsilon = eps
  return {name.replace(f"{_POS}.weight_g", f"{_POS}.parametrizations.weight.original0")
          .replace(f"{_POS}.weight_v", f"{_POS}.parametrizations.weight.original1"): value
          for name, value in strip_prefix(state, "wav2vec2.").items()}
