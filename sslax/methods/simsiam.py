"""SimSiam: BYOL without the momentum encoder; the stop-gradient alone prevents collapse.

Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021.
"""
from __future__ import annotations

from sslax.eval.collapse import collapse_metrics
from sslax.losses import simsiam_loss
from sslax.methods.base import register
from sslax.methods.two_view import TwoViewMethod


@register("simsiam")
class SimSiam(TwoViewMethod):

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    p = model.predict(z, train=True)
    loss, aux = simsiam_loss(p[:n], p[n:], z[:n], z[n:])
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state
