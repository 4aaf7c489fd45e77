"""DINO: a student matches the centered, sharpened output distribution of an EMA teacher.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers",
ICCV 2021. Multi-crop on device: the teacher sees the 2 global crops, the
student the 2 global and `method.num_local_crops` smaller local crops; the
center is an EMA of the teacher outputs over the global batch, kept in
`TrainState.method_state`; the teacher temperature warms up linearly; the
last layer's gradients are cancelled for `method.freeze_last_layer_steps`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment import augment_batch
from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses import dino_center_update, dino_loss, teacher_temperature_schedule
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import MomentumMixin, TwoViewMethod, local_crops, view_recipe
from sslax.models import DINOHead, build_encoder


class DINONet(nnx.Module):
  """Backbone and DINO head: `(prototype logits [B, K], features + {"embedding"})`."""

  def __init__(self, model_config, head_config, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.head = DINOHead(self.encoder.num_features, head_config.hidden_dim, head_config.bottleneck_dim,
                         head_config.num_prototypes, num_layers=head_config.num_layers,
                         batch_norm=head_config.batch_norm, norm_last_layer=head_config.norm_last_layer,
                         rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, train: bool = True, freeze_prototypes=False):
    h, features = self.encoder(images, train=train)
    logits, head_features = self.head(h, train=train, freeze_prototypes=freeze_prototypes)
    return logits, {**features, **head_features}


@register("dino")
class DINO(MomentumMixin, TwoViewMethod):
  card = MethodCard(
      family="self-distillation",
      paper="Caron et al. 2021, [Emerging Properties in Self-Supervised Vision Transformers]"
            "(https://arxiv.org/abs/2104.14294)",
      objective="cross-entropy of the student's softmax(s / 0.1) to the centered, sharpened teacher "
                "softmax((t - c) / tau_t) over all pairs of different crops; c an EMA of teacher outputs",
      loss="sslax.losses.dino_loss",
      reference="facebookresearch/dino `main_dino.py` (`DINOLoss`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses_moco_dino.py::test_dino_loss_matches_the_reference_double_loop",
             "tests/test_methods.py::test_dino_center_follows_the_teacher"),
      results=("Every method on CIFAR-10", "random init", "DINO"))

  uses_projector = False  # the DINO head (`head.*`) instead

  def check_config(self):
    self.check_momentum()
    m = "method."
    check_config_value(self.config, m + "student_temperature", lambda v: v > 0, "a positive number")
    check_config_value(self.config, m + "teacher_temperature", lambda v: v > 0, "a positive number")
    check_config_value(self.config, m + "warmup_teacher_temperature", lambda v: v > 0, "a positive number")
    check_config_value(self.config, m + "warmup_teacher_temperature_steps", lambda v: v >= 0,
                       "a non-negative integer")
    check_config_value(self.config, m + "center_momentum", lambda v: 0 <= v < 1, "a number in [0, 1)")
    check_config_value(self.config, m + "num_local_crops", lambda v: isinstance(v, int) and v >= 0,
                       "a non-negative integer")
    check_config_value(self.config, m + "freeze_last_layer_steps", lambda v: isinstance(v, int) and v >= 0,
                       "a non-negative integer")
    check_config_value(self.config, "head.num_prototypes", lambda v: isinstance(v, int) and v > 0,
                       "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> DINONet:
    return DINONet(self.config.model, self.config.head, rngs=rngs)

  def init_state(self, model, key):
    return {"center": jnp.zeros((self.config.head.num_prototypes,), jnp.float32)}

  def loss(self, model, batch, method_state, key, step, target=None):
    m = self.config.method
    images = batch["image"]
    keys = jax.random.split(key, 2 + m.num_local_crops)
    g1 = augment_batch(keys[0], images, view_recipe(self.config, 1))
    g2 = augment_batch(keys[1], images, view_recipe(self.config, 2))
    n, globals_ = g1.shape[0], jnp.concatenate([g1, g2], axis=0)
    freeze = step < m.freeze_last_layer_steps
    s_global, features = model(globals_, train=True, freeze_prototypes=freeze)
    student = [s_global[:n], s_global[n:]]
    if m.num_local_crops:
      # Local crops have another resolution: one more pass, as the reference groups crops by size.
      s_local, _ = model(local_crops(keys[2:], images, self.config), train=True, freeze_prototypes=freeze)
      student += list(s_local.reshape(m.num_local_crops, n, -1))
    t, _ = target(globals_, train=True)
    teacher = jax.lax.stop_gradient(t).reshape(2, n, -1)
    temperature = teacher_temperature_schedule(
        step, warmup_temperature=m.warmup_teacher_temperature, temperature=m.teacher_temperature,
        warmup_steps=m.warmup_teacher_temperature_steps)
    loss, aux = dino_loss(jnp.stack(student), teacher, method_state["center"],
                          student_temperature=m.student_temperature, teacher_temperature=temperature)
    center = dino_center_update(method_state["center"], teacher, momentum=m.center_momentum)
    aux = {**aux, "teacher_temperature": temperature, **collapse_metrics(features["embedding"][:n])}
    return loss, aux, {"center": center}
