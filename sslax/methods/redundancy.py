"""Redundancy reduction: VICReg and Barlow Twins, two views through an expander, no target network.

Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning", ICLR 2022.
Zbontar, Jing, Misra, LeCun, Deny, "Barlow Twins: Self-Supervised Learning
via Redundancy Reduction", ICML 2021.
"""
from __future__ import annotations

import dataclasses

from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses import barlow_twins_loss, vicreg_loss
from sslax.methods.base import TwoViewMethod


@dataclasses.dataclass(frozen=True)
class VICReg(TwoViewMethod):
  name = "vicreg"

  def check_config(self):
    for key in ("sim_coeff", "std_coeff", "cov_coeff"):
      check_config_value(self.config, f"method.{key}", lambda v: v >= 0, "a non-negative number")

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    m = self.config.method
    loss, aux = vicreg_loss(z[:n], z[n:], sim_coeff=m.sim_coeff, std_coeff=m.std_coeff, cov_coeff=m.cov_coeff)
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state


@dataclasses.dataclass(frozen=True)
class BarlowTwins(TwoViewMethod):
  name = "barlow_twins"

  def check_config(self):
    check_config_value(self.config, "method.lambd", lambda v: v >= 0, "a non-negative number")
    check_config_value(self.config, "method.scale_loss", lambda v: v > 0, "a positive number")

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    loss, aux = barlow_twins_loss(z[:n], z[n:], lambd=self.config.method.lambd)
    # solo-learn scales the loss (0.1 on CIFAR) to suit LARS's learning rate.
    return loss * self.config.method.scale_loss, {**aux, **collapse_metrics(z[:n])}, method_state
