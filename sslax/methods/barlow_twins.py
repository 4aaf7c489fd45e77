"""Barlow Twins: two views through an expander whose cross-correlation is pushed to the identity.

Zbontar, Jing, Misra, LeCun, Deny, "Barlow Twins: Self-Supervised Learning
via Redundancy Reduction", ICML 2021.
"""
from __future__ import annotations

from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses import barlow_twins_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import TwoViewMethod


@register("barlow_twins")
class BarlowTwins(TwoViewMethod):
  card = MethodCard(
      family="redundancy reduction",
      paper="Zbontar et al. 2021, [Barlow Twins](https://arxiv.org/abs/2103.03230)",
      objective="sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2, C the cross-correlation of the two "
                "batch-normalized projections",
      loss="sslax.losses.barlow_twins_loss",
      reference="facebookresearch/barlowtwins `main.py`; solo-learn `barlow_twins.py`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses_distillation.py::test_barlow_twins_matches_formula"),
      results=("Every method on CIFAR-10", "random init", "Barlow Twins"))

  def check_config(self):
    check_config_value(self.config, "method.lambd", lambda v: v >= 0, "a non-negative number")
    check_config_value(self.config, "method.scale_loss", lambda v: v > 0, "a positive number")

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    loss, aux = barlow_twins_loss(z[:n], z[n:], lambd=self.config.method.lambd)
    # solo-learn scales the loss (0.1 on CIFAR) to suit LARS's learning rate.
    return loss * self.config.method.scale_loss, {**aux, **collapse_metrics(z[:n])}, method_state
