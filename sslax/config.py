"""Loading, overriding and validating the Python configs under `experiments/`.

A config file defines `get_config(arg) -> ml_collections.ConfigDict`; it is
locked, so a misspelled override fails. `validate_config` checks ranges and
types before anything is built or compiled, and every error names the key,
the expected and the actual value.
"""
from __future__ import annotations

import ast
import importlib.util
import math
import numbers
import os
import re
import sys
from typing import Any, Callable, Sequence

import ml_collections


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` and calls its `get_config(arg)`."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    what = "a directory" if os.path.isdir(path) else "no such file"
    raise ValueError(f"--config: expected a Python config file (path/to/config.py[:variant]), got {path!r} ({what})")
  if not os.access(path, os.R_OK):
    raise ValueError(f"--config: cannot read {path!r} (permission denied)")
  module_spec = importlib.util.spec_from_file_location(f"sslax_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(module_spec)
  # Config files may import shared settings from their own folder (experiments/cifar10_common.py).
  folder = os.path.dirname(os.path.abspath(path))
  sys.path.insert(0, folder)
  try:
    module_spec.loader.exec_module(module)
  except SyntaxError as e:
    raise ValueError(f"--config: {e.filename or path}, line {e.lineno}: {e.msg} (expected a Python file defining "
                     "get_config(arg))") from None
  finally:
    sys.path.remove(folder)
  if not hasattr(module, "get_config"):
    raise ValueError(f"--config: expected {path} to define get_config(arg), it does not")
  config = module.get_config(arg or None)
  config.lock()
  return config


def _parse_value(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> ml_collections.ConfigDict:
  """Applies `key.sub=value` strings (values parsed as Python literals) to a locked config."""
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"--set: expected key=value, got {item!r}")
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        raise ValueError(f"{key}: unknown config key (no {part!r} in {sorted(node.keys())})")
      node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or parts[-1] not in node:
      raise ValueError(f"{key}: unknown config key (expected one of {sorted(node.keys())})")
    value = _parse_value(text)
    try:
      node[parts[-1]] = value
    except (TypeError, KeyError, AttributeError) as e:
      raise ValueError(f"{key}: expected a value of type {type(node[parts[-1]]).__name__}, "
                       f"got {value!r} ({e})") from e
  return config


def _is_int(v):
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v):
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _prob(v):
  return _is_num(v) and 0.0 <= v <= 1.0


def is_positive_int(v) -> bool:
  """An int (not a bool) above 0: the check of every count in a config."""
  return _is_int(v) and v > 0


_pos_int = is_positive_int


def _nonneg_int(v):
  return _is_int(v) and v >= 0


def _pos(v):
  return _is_num(v) and v > 0


def _nonneg(v):
  return _is_num(v) and v >= 0


def _range_pair(v):
  return (isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_num(x) for x in v)
          and 0 < v[0] <= v[1] <= 1)


def _size_pair(v):
  return isinstance(v, (tuple, list)) and len(v) == 2 and all(_pos_int(x) for x in v)


def _sharding_rules(v):
  def regex(text):
    try:
      re.compile(text)
      return True
    except (re.error, TypeError):
      return False

  def spec(x):
    return x in ("fsdp", "replicated") or (isinstance(x, (tuple, list)) and all(
        a is None or isinstance(a, str) or (isinstance(a, (tuple, list)) and all(isinstance(n, str) for n in a))
        for a in x))

  return isinstance(v, (tuple, list)) and all(
      isinstance(r, (tuple, list)) and len(r) == 2 and isinstance(r[0], str) and regex(r[0]) and spec(r[1]) for r in v)


_CHECKS: list[tuple[str, Callable[[Any], bool], str]] = [
    ("seed", _nonneg_int, "a non-negative integer"),
    ("sharding.rules", _sharding_rules,
     "a tuple of (regex, 'fsdp' | 'replicated' | per-dimension mesh axes) pairs, e.g. (('.*', 'fsdp'),)"),
    ("sharding.min_size", _nonneg_int, "a non-negative integer"),
    ("train.batch_size", _pos_int, "a positive integer"),
    ("train.num_steps", _nonneg_int, "a non-negative integer (0: use train.num_epochs)"),
    ("train.num_epochs", _nonneg, "a non-negative number"),
    ("train.log_every", _pos_int, "a positive integer"),
    ("train.checkpoint_every", _pos_int, "a positive integer"),
    ("train.keep_checkpoints", _pos_int, "a positive integer"),
    ("train.knn_every", _nonneg_int, "a non-negative integer (0: off)"),
    ("train.nonfinite_policy", lambda v: v in ("abort", "skip"), "'abort' or 'skip'"),
    ("train.allow_resume_changes", lambda v: isinstance(v, bool), "True or False"),
    ("data.on_bad_example", lambda v: v in ("error", "skip"), "'error' or 'skip'"),
    ("train.async_checkpoint", lambda v: isinstance(v, bool), "True or False"),
    ("train.on_corrupt_checkpoint", lambda v: v in ("fallback", "fail"), "'fallback' or 'fail'"),
    ("train.compute_dtype", lambda v: v in ("float32", "bfloat16"), "'float32' or 'bfloat16'"),
    ("train.conv_impl", lambda v: v in ("auto", "xla", "im2col"), "'auto', 'xla' or 'im2col'"),
    ("optim.lr", _pos, "a positive number"),
    ("optim.weight_decay", _nonneg, "a non-negative number"),
    ("optim.momentum", lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("optim.warmup_steps", _nonneg_int, "a non-negative integer"),
    ("optim.final_lr_fraction", _prob, "a number in [0, 1]"),
    ("model.in_channels", _pos_int, "a positive integer"),
    ("augment.crop_size", _size_pair, "a pair of positive integers (H, W)"),
    ("augment.crop_scale", _range_pair, "a pair (min, max) with 0 < min <= max <= 1"),
    ("augment.flip_prob", _prob, "a probability in [0, 1]"),
    ("augment.jitter_prob", _prob, "a probability in [0, 1]"),
    ("augment.grayscale_prob", _prob, "a probability in [0, 1]"),
    ("augment.blur_prob", _prob, "a probability in [0, 1]"),
    ("augment.solarize_prob", _prob, "a probability in [0, 1]"),
    ("augment.brightness", lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("augment.contrast", lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("augment.saturation", lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("augment.hue", lambda v: _is_num(v) and 0 <= v <= 0.5, "a number in [0, 0.5]"),
    ("monitor.collapse_std_ratio", _nonneg, "a non-negative number (0: off)"),
    ("monitor.collapse_rank", _nonneg, "a non-negative number (0: off)"),
    ("eval.knn_k", _pos_int, "a positive integer"),
    ("eval.knn_temperature", _pos, "a positive number"),
    ("eval.batch_size", _pos_int, "a positive integer"),
    ("finetune.per_group", _nonneg_int, "a non-negative integer (0: every labelled example)"),
    ("finetune.steps", _pos_int, "a positive integer"),
    ("finetune.lr", _pos, "a positive number"),
    ("finetune.batch_size", _pos_int, "a positive integer"),
    ("finetune.warmup_steps", _nonneg_int, "a non-negative integer"),
    ("finetune.adapter_dim", _nonneg_int, "a non-negative integer (0: no adapters)"),
]


def _lookup(config, dotted):
  node = config
  for part in dotted.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return _MISSING
    node = node[part]
  return node


_MISSING = object()


def check_config_value(config: ml_collections.ConfigDict, key: str, ok: Callable[[Any], bool], expected: str) -> None:
  """Raises ValueError naming `key`, the `expected` value and the actual one unless `ok(value)`."""
  value = _lookup(config, key)
  if value is _MISSING:
    raise ValueError(f"{key}: missing from the config (expected {expected})")
  try:
    good = ok(value)
  except TypeError:
    good = False
  if not good or isinstance(value, bool) and "bool" not in expected:
    raise ValueError(f"{key}: expected {expected}, got {value!r}")


def check_loss_block_size(config: ml_collections.ConfigDict) -> None:
  """method.loss_block_size: None (dense InfoNCE) or a positive int (blockwise)."""
  if config.method.get("loss_block_size") is not None:
    check_config_value(config, "method.loss_block_size", lambda v: isinstance(v, int) and v > 0,
                       "None (dense) or a positive int (candidates per block)")


# Keys only image methods read; configs without an `augment` section (speech, text) leave them out.
# A method's own sections (`projector`, `head`, `method`) are checked by the method (check_config).
_IMAGE_ONLY = ("augment.", "model.in_channels")


def _non_finite(node, name: str = ""):
  """(dotted key, value) of the first float in `node` (nested sections, tuples) that is inf or NaN."""
  if isinstance(node, (ml_collections.ConfigDict, dict)):
    children = [(f"{name}.{k}" if name else str(k), v) for k, v in node.items()]
  elif isinstance(node, (list, tuple)):
    children = [(f"{name}[{i}]", v) for i, v in enumerate(node)]
  else:
    return (name, node) if isinstance(node, float) and not math.isfinite(node) else None
  for child_name, child in children:
    found = _non_finite(child, child_name)
    if found:
      return found
  return None


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Raises ValueError naming the first key whose value is missing or out of range, or that is an
  infinite or NaN float anywhere in the config (`--set optim.lr=1e999` parses as inf; no key
  means an infinite value)."""
  bad = _non_finite(config)
  if bad:
    raise ValueError(f"{bad[0]}: expected a finite number, got {bad[1]!r}")
  images = "augment" in config
  for key, ok, expected in _CHECKS:
    if not images and key.startswith(_IMAGE_ONLY):
      continue
    value = _lookup(config, key)
    if value is _MISSING:
      raise ValueError(f"{key}: missing from the config (expected {expected})")
    if not ok(value):
      raise ValueError(f"{key}: expected {expected}, got {value!r}")
  hashes = config.train.get("checkpoint_hashes", "auto")  # absent in configs of older runs, as below
  if hashes not in ("auto", "sha256", "size"):
    raise ValueError(f"train.checkpoint_hashes: expected 'auto', 'sha256' or 'size', got {hashes!r}")
  activations = (config.get("sharding") or {}).get("activations", "auto")  # absent in configs of older runs
  if activations not in ("auto", "batch", "none"):
    raise ValueError(f"sharding.activations: expected 'auto', 'batch' or 'none', got {activations!r}")
  init_from = config.get("model", {}).get("init_from")
  if init_from is not None and not (isinstance(init_from, str) and os.path.exists(init_from)):
    raise ValueError(f"model.init_from: expected a weights file or directory, got {init_from!r} (not found)")
  if config.train.num_steps == 0 and config.train.num_epochs <= 0:
    raise ValueError("train.num_steps / train.num_epochs: expected one of them positive, got both 0")
  if not images:
    return config
  if len(config.augment.mean) != config.model.in_channels or len(config.augment.std) != config.model.in_channels:
    raise ValueError(f"augment.mean / augment.std: expected {config.model.in_channels} values (model.in_channels), "
                     f"got {len(config.augment.mean)} and {len(config.augment.std)}")
  for key, value in (config.get("augment_view2") or {}).items():
    if key not in config.augment:
      raise ValueError(f"augment_view2.{key}: expected a key of augment ({sorted(config.augment)}), got {key!r}")
    for check_key, ok, expected in _CHECKS:
      if check_key == f"augment.{key}" and not ok(value):
        raise ValueError(f"augment_view2.{key}: expected {expected}, got {value!r}")
  if any(s <= 0 for s in config.augment.std):
    raise ValueError(f"augment.std: expected positive values, got {tuple(config.augment.std)}")
  return config


def pretrained_fields() -> dict:
  """`model.init_from`: PyTorch-layout weights to start the encoder from (a torchvision / timm
  state dict file, a Hugging Face BERT / GPT-2 / wav2vec 2.0 directory or an `sslax export`;
  `sslax.weights.load_pretrained`); `model.init_from_path`: which encoder, when the network has
  several ("image_tower", ...). Every model section has both."""
  return {"init_from": ml_collections.FieldReference(None, field_type=str),
          "init_from_path": ml_collections.FieldReference(None, field_type=str)}


def base_config() -> ml_collections.ConfigDict:
  """Every key a run reads, with neutral defaults; `experiments/*.py` start from this."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.mesh = ml_collections.ConfigDict({"data": -1})
  # How the train state is laid out over the mesh (sslax.train.mesh.state_shardings): no rules =
  # replicated (data parallelism); (('.*', 'fsdp'),) = parameters and optimizer state split over
  # `axis` (FSDP); a rule is (regex on the leaf path, 'fsdp' | 'replicated' | per-dimension axes).
  # `activations`: 'auto' constrains layer outputs to the batch split when any state leaf is split,
  # so that FSDP gathers weights rather than activations (sslax.models.sharding); 'batch' always,
  # 'none' never.
  c.sharding = ml_collections.ConfigDict({"rules": (), "axis": "data", "min_size": 0, "activations": "auto"})
  # loss_block_size: None = dense similarity matrix; an int = blockwise InfoNCE (same loss and
  # gradients, memory O(batch x block) instead of O(batch^2); sslax.losses.blockwise).
  c.method = ml_collections.ConfigDict({"name": "simclr", "temperature": 0.2,
                                        "loss_block_size": ml_collections.FieldReference(None, field_type=int)})
  c.model = ml_collections.ConfigDict({"name": "resnet18", "in_channels": 3, "cifar_stem": True,
                                       "width": ml_collections.FieldReference(None, field_type=int),
                                       **pretrained_fields()})
  c.projector = ml_collections.ConfigDict({"hidden_dim": 2048, "out_dim": 256, "num_layers": 2,
                                           "batch_norm": True})
  c.augment = ml_collections.ConfigDict({
      "crop_size": (32, 32), "crop_scale": (0.08, 1.0), "flip_prob": 0.5,
      "brightness": 0.4, "contrast": 0.4, "saturation": 0.2, "hue": 0.1, "jitter_prob": 0.8,
      "grayscale_prob": 0.2, "blur_prob": 0.0, "solarize_prob": 0.0,
      "mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616)})
  # Overrides of `augment` for the second view (BYOL's asymmetric recipe); empty: same as view 1.
  c.augment_view2 = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict({
      "source": "tfds", "name": "cifar10", "paths": ml_collections.ConfigDict(),
      "data_dir": ml_collections.FieldReference(None, field_type=str),
      "train_split": "train", "eval_split": "test",
      "image_size": ml_collections.FieldReference(None, field_type=tuple),
      # A corrupt, truncated or wrongly sized file: 'error' names it and stops; 'skip' leaves it
      # out and counts it (data/skipped_examples in metrics.jsonl and the report).
      "on_bad_example": "error"})
  c.optim = ml_collections.ConfigDict({
      "name": "lars", "lr": 0.4, "scale_lr_with_batch": True, "weight_decay": 1e-5, "momentum": 0.9,
      "warmup_steps": 0, "final_lr_fraction": 0.0, "grad_clip_norm": 0.0, "trust_coefficient": 0.02,
      "b1": 0.9, "b2": 0.999})
  c.train = ml_collections.ConfigDict({
      "batch_size": 256, "num_steps": 0, "num_epochs": 1.0, "log_every": 50,
      "checkpoint_every": 1000, "keep_checkpoints": 3, "knn_every": 0,
      # abort: stop without committing another checkpoint; skip: drop the update, count it, go on.
      "nonfinite_policy": "abort",
      # Resuming with another seed, batch size, dataset or augmentation is refused unless True.
      "allow_resume_changes": False,
      # Saves are written in the background while training goes on.
      "async_checkpoint": True,
      # fallback: a checkpoint failing its manifest check is set aside and the previous one restored.
      "on_corrupt_checkpoint": "fallback",
      # What a checkpoint's manifest records of each file: 'sha256' (read back once per save), 'size'
      # (a listing only), 'auto' = sha256 on local disks, sizes on object stores (gs://).
      "checkpoint_hashes": "auto",
      # bfloat16: matmuls and convolutions in bf16; params, optimizer state and reductions float32
      # (sslax.models.precision).
      "compute_dtype": "float32",
      # Convolutions: 'im2col' (chunked matmuls; XLA:CPU's weight gradient is ~10x slower on some
      # layers), 'xla', or 'auto' = im2col on the CPU backend for inputs of 512k+ elements
      # (sslax.models.conv).
      "conv_impl": "auto",
      # True: steps that neither log, save, monitor nor refresh run under
      # jax.transfer_guard_device_to_host('disallow_explicit'), so any read of a device value on the
      # host there (a sync that stalls the pipeline of dispatched steps) raises, naming the line.
      "guard_host_sync": False})
  c.monitor = ml_collections.ConfigDict({"collapse_std_ratio": 0.1, "collapse_rank": 1.5})
  # `sslax finetune`: per_group labelled examples per combination of group_by (0: every example).
  # adapter_dim > 0 inserts bottleneck adapters in every Transformer block and trains only the
  # parameters whose path contains one of train_only (default: adapters, layer norms, the head).
  # train_mode: the network trains as in pretraining (augmentation, batch statistics, dropout);
  # False: as it is evaluated (sslax.methods.downstream).
  c.finetune = ml_collections.ConfigDict({
      "label": "label", "per_group": 0, "group_by": ("label",), "steps": 300, "lr": 1e-3,
      "weight_decay": 0.01, "batch_size": 64, "warmup_steps": 30, "freeze": (), "adapter_dim": 0,
      "train_only": ("adapter", "norm"), "train_mode": False})
  # layer_probe: the two-view and rotation methods with a ResNet encoder also probe each stage
  # (LayerProbe) at the end of a run
  c.eval = ml_collections.ConfigDict({
      "knn_k": 200, "knn_temperature": 0.07, "batch_size": 512, "linear_probe": True,
      "monitor_max_train": 10000, "layer_probe": True})
  return c
