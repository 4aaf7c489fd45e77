"""SimCLR: two augmented views, a projection head and NT-Xent over the global batch.

Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML 2020.
"""
from __future__ import annotations

from sslax.config import check_config_value, check_loss_block_size
from sslax.eval.collapse import collapse_metrics
from sslax.losses import nt_xent_loss
from sslax.methods.base import register
from sslax.methods.two_view import TwoViewMethod


@register("simclr")
class SimCLR(TwoViewMethod):
  """SimCLR as pure functions over the shared TrainState; see `experiments/simclr_*.py`."""

  def check_config(self):
    check_config_value(self.config, "method.temperature", lambda v: v > 0, "a positive number")
    check_loss_block_size(self.config)

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    loss, aux = nt_xent_loss(z[:n], z[n:], temperature=self.config.method.temperature,
                             block_size=self.config.method.get("loss_block_size"))
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state
