"""VICReg: two views through an expander, variance-invariance-covariance terms, no target network.

Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance
Regularization for Self-Supervised Learning", ICLR 2022.
"""
from __future__ import annotations

from sslax.config import check_config_value
from sslax.eval.collapse import collapse_metrics
from sslax.losses import vicreg_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import TwoViewMethod


@register("vicreg")
class VICReg(TwoViewMethod):
  card = MethodCard(
      family="redundancy reduction",
      paper="Bardes et al. 2022, [VICReg](https://arxiv.org/abs/2105.04906)",
      objective="25 * MSE(z1, z2) + 25 * mean relu(1 - std(z)) + 1 * sum of squared off-diagonal "
                "covariances / d, per branch",
      loss="sslax.losses.vicreg_loss",
      reference="facebookresearch/vicreg `main_vicreg.py`; solo-learn `vicreg.py`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses_distillation.py::test_vicreg_matches_formula"),
      results=("Every method on CIFAR-10", "random init", "VICReg"))

  def check_config(self):
    for key in ("sim_coeff", "std_coeff", "cov_coeff"):
      check_config_value(self.config, f"method.{key}", lambda v: v >= 0, "a non-negative number")

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    m = self.config.method
    loss, aux = vicreg_loss(z[:n], z[n:], sim_coeff=m.sim_coeff, std_coeff=m.std_coeff, cov_coeff=m.cov_coeff)
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state
