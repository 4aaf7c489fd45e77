"""BYOL: an online network with a predictor regresses the EMA target network's projection.

Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning", NeurIPS 2020. The target is the `ema_target` optax transform's
state (tau on the cosine schedule from `method.base_tau` to 1).
"""
from __future__ import annotations

from sslax.eval.collapse import collapse_metrics
from sslax.losses import byol_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import MomentumMixin, TwoViewMethod


@register("byol")
class BYOL(MomentumMixin, TwoViewMethod):
  card = MethodCard(
      family="self-distillation",
      paper="Grill et al. 2020, [Bootstrap Your Own Latent](https://arxiv.org/abs/2006.07733)",
      objective="2 - 2 cos(predictor(online(v1)), sg(target(v2))), symmetrized; the target is an EMA of "
                "the online network (tau on a cosine schedule)",
      loss="sslax.losses.byol_loss",
      reference="deepmind-research `byol`; solo-learn `byol.py`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses_distillation.py::test_byol_and_simsiam_match_formula_and_stop_gradient",
             "tests/test_methods.py::test_byol_target_is_the_ema_of_the_params_through_the_step"),
      results=("Every method on CIFAR-10", "random init", "BYOL"))

  def check_config(self):
    self.check_momentum()

  def loss(self, model, batch, method_state, key, step, target=None):
    x, z, n = self.online_and_views(model, batch, key)
    p = model.predict(z, train=True)
    # The target sees the same views in training mode (batch statistics), as the
    # reference; its running statistics are not used and are dropped.
    zt, _ = target(x, train=True)
    loss, aux = byol_loss(p[:n], p[n:], zt[:n], zt[n:])
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state
