"""SimSiam: BYOL without the momentum encoder; the stop-gradient alone prevents collapse.

Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021.
"""
from __future__ import annotations

from sslax.eval.collapse import collapse_metrics
from sslax.losses import simsiam_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import TwoViewMethod


@register("simsiam")
class SimSiam(TwoViewMethod):
  card = MethodCard(
      family="self-distillation",
      paper="Chen & He 2021, [Exploring Simple Siamese Representation Learning](https://arxiv.org/abs/2011.10566)",
      objective="-cos(p1, sg(z2)) / 2 - cos(p2, sg(z1)) / 2: BYOL's loss with the stop-gradient and no target",
      loss="sslax.losses.simsiam_loss",
      reference="facebookresearch/simsiam `builder.py`; solo-learn `simsiam.py`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses_distillation.py::test_byol_and_simsiam_match_formula_and_stop_gradient"),
      results=("Every method on CIFAR-10", "random init", "SimSiam"))

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    p = model.predict(z, train=True)
    loss, aux = simsiam_loss(p[:n], p[n:], z[:n], z[n:])
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state
