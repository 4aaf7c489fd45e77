"""Barlow Twins: two views through an expander whose cross-correlation is pushed to the identity.

Zbontar, Jing, Misra, LeCun, Deny, "Barlow Twins: Self-Supervised Learning
via Redundancy Reduction", ICML 2021.
"""
from __future__ import annotations

from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses import barlow_twins_loss
from sslax.methods.base import register
from sslax.methods.two_view import TwoViewMethod


@register("barlow_twins")
class BarlowTwins(TwoViewMethod):

  def check_config(self):
    check_config_value(self.config, "method.lambd", lambda v: v >= 0, "a non-negative number")
    check_config_value(self.config, "method.scale_loss", lambda v: v > 0, "a positive number")

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    loss, aux = barlow_twins_loss(z[:n], z[n:], lambd=self.config.method.lambd)
    # solo-learn scales the loss (0.1 on CIFAR) to suit LARS's learning rate.
    return loss * self.config.method.scale_loss, {**aux, **collapse_metrics(z[:n])}, method_state
