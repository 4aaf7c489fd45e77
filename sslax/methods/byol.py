"""BYOL: an online network with a predictor regresses the EMA target network's projection.

Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
Learning", NeurIPS 2020. The target is the `ema_target` optax transform's
state (tau on the cosine schedule from `method.base_tau` to 1).
"""
from __future__ import annotations

from sslax.eval.collapse import collapse_metrics
from sslax.losses import byol_loss
from sslax.methods.base import register
from sslax.methods.two_view import MomentumMixin, TwoViewMethod


@register("byol")
class BYOL(MomentumMixin, TwoViewMethod):

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
