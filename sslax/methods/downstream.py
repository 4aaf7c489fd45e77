"""What the downstream tasks share (`classify.py`, `tag.py`): a pretrained network plus a linear
head, trained on labelled data through the same train step and loop as pretraining.

A downstream method wraps the pretraining method named by `method.backbone`
(its config is the run's config with that name): the backbone's `inputs`
plus the labels, its `build_model` plus a head, its `features` (one vector
per example) or `token_features` (one per token) as what the head reads. So
fine-tuning is sharded, donated, checkpointed, resumable and guarded
against non-finite steps like any run. Frozen parts and adapters are
parameter masks on the optimizer (`optim.freeze`, `optim.train_only`;
`sslax.optim.masks`).

Decisions:

- The pretrained weights come in as host arrays (`pretrained=(params,
  batch_stats)` of the backbone, e.g. restored by `sslax finetune` from a
  pretraining workdir) and are copied by path into the freshly built
  network, so new parts (adapters, the head) keep their initialization. A
  restart rebuilds the same network and the loop then restores the
  fine-tuning run's own checkpoint over it: resuming is exact.
- The head starts at zero (the reference fine-tuning scripts' choice for
  few labels: the first steps move the head, not the pretrained features).
- The backbone runs as its `features` hook does (evaluation mode: running
  batch-norm statistics, no augmentation, no dropout), as the fine-tuning
  this replaces did; with `finetune.train_mode` it trains as in pretraining
  (`train_features`: the method's augmentation, batch statistics updated,
  dropout). Evaluation always uses `features`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from sslax.config import check_config_value
from sslax.data.modality import Combined, Labels
from sslax.eval.downstream import HeldoutAccuracy
from sslax.methods.base import Method, make_method
from sslax.models.functional import copy_by_path


class DownstreamNet(nnx.Module):
  """A backbone (the pretraining method's network) and a linear head of `num_classes`."""

  def __init__(self, backbone: nnx.Module, dim: int, num_classes: int, *, rngs: nnx.Rngs):
    self.backbone = backbone
    self.head = nnx.Linear(dim, num_classes, kernel_init=nnx.initializers.zeros_init(),
                           bias_init=nnx.initializers.zeros_init(), rngs=rngs)


def load_pretrained(backbone: nnx.Module, pretrained) -> None:
  """Copies `pretrained = (params, batch_stats)` into `backbone` by path; parameters the backbone
  has and the pretrained network lacks must be adapters (freshly initialized)."""
  params, batch_stats = pretrained
  new_params, missing = copy_by_path(nnx.state(backbone, nnx.Param), params)
  new_stats, _ = copy_by_path(nnx.state(backbone, nnx.BatchStat), batch_stats)
  missing = [m for m in missing if "adapter" not in m]
  if missing:
    raise ValueError(f"finetune: the pretrained network lacks {len(missing)} parameters of the network to "
                     f"fine-tune, e.g. {missing[0]}")
  nnx.update(backbone, new_params, new_stats)


@dataclasses.dataclass(frozen=True)
class Downstream(Method):
  """A pretrained backbone plus a head; subclasses say whether labels are per example or per token.

  Config: `method.backbone` (the pretraining method's name), `finetune.label` (the label key),
  `finetune.num_classes`, and for tagging `finetune.tag_names` (IOB tags add entity F1).
  """

  pretrained: Any = dataclasses.field(default=None, compare=False, repr=False)

  per_token: ClassVar[bool] = False

  def __post_init__(self):
    check_config_value(self.config, "method.backbone", lambda v: isinstance(v, str) and v not in ("classify", "tag"),
                       "the name of the pretraining method whose network is fine-tuned")
    check_config_value(self.config, "finetune.num_classes", lambda v: isinstance(v, int) and v > 1,
                       "an integer > 1 (classes of finetune.label)")
    super().__post_init__()

  @functools.cached_property
  def backbone(self) -> Method:
    """The pretraining method, made from this config with `method.name = method.backbone`."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.method.name = self.config.method.backbone
    return make_method(config)

  @property
  def label_key(self) -> str:
    return self.config.finetune.label

  @property
  def inputs(self) -> Combined:
    shape = (int(self.config.data.seq_len),) if self.per_token else ()
    return Combined((self.backbone.inputs, Labels(self.label_key, shape=shape,
                                                  num_classes=int(self.config.finetune.num_classes))))

  def probe_data(self):
    return None  # the run's own data is labelled: the evaluators read its eval split

  def backbone_features(self, backbone: nnx.Module, inputs, key=None) -> jax.Array:
    """[B, D] (classify) or [B, L, D] (tag) from the backbone's hooks; with `key`, in training mode."""
    if self.per_token:
      return self.backbone.token_features(backbone, inputs, key)
    if key is not None:
      return self.backbone.train_features(backbone, inputs, key)
    return self.backbone.features(backbone, inputs)

  def build_model(self, rngs: nnx.Rngs) -> DownstreamNet:
    backbone = self.backbone.build_model(rngs)
    spec = self.backbone.inputs.batch_spec(1)
    zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in spec.items()}
    dim = jax.eval_shape(lambda: self.backbone_features(backbone, zeros)).shape[-1]
    net = DownstreamNet(backbone, dim, int(self.config.finetune.num_classes), rngs=rngs)
    if self.pretrained is not None:
      load_pretrained(net.backbone, self.pretrained)
    return net

  def logits(self, model: DownstreamNet, inputs, key=None) -> jax.Array:
    """[B, C] or [B, L, C] float32 class scores; with `key`, the backbone in training mode."""
    return model.head(self.backbone_features(model.backbone, inputs, key).astype(jnp.float32))

  def loss(self, model, batch, method_state, key, step, target=None):
    y = batch[self.label_key]
    logits = self.logits(model, batch, key if self.config.finetune.get("train_mode") else None)
    # -1: no target (a word's later sub-words, padding); an explicit mask, as 0 is a real class
    has_target = (y >= 0).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(y, 0))
    count = jnp.maximum(jnp.sum(has_target), 1.0)
    loss = jnp.sum(ce * has_target) / count
    accuracy = jnp.sum((jnp.argmax(logits, -1) == y) * has_target) / count
    return loss, {"accuracy": accuracy, "num_targets": jnp.sum(has_target)}, method_state

  def features(self, model, inputs) -> jax.Array:
    return self.backbone.features(model.backbone, inputs)

  def evaluators(self):
    return (HeldoutAccuracy(),)
