"""SimCLR: two augmented views, a projection head and NT-Xent over the global batch.

Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive
Learning of Visual Representations", ICML 2020.
"""
from __future__ import annotations

from sslax.config import check_config_value, check_loss_block_size
from sslax.eval.collapse import collapse_metrics
from sslax.losses import nt_xent_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import TwoViewMethod


@register("simclr")
class SimCLR(TwoViewMethod):
  """SimCLR as pure functions over the shared TrainState; see `experiments/simclr_*.py`."""
  card = MethodCard(
      family="contrastive",
      paper="Chen et al. 2020, [A Simple Framework for Contrastive Learning of Visual Representations]"
            "(https://arxiv.org/abs/2002.05709)",
      objective="NT-Xent over the 2N views of the global batch: for each view, -log softmax of its "
                "other view among the 2N-1 others, cosine similarities over a temperature",
      loss="sslax.losses.nt_xent_loss",
      reference="google-research/simclr `objective.py`; solo-learn `simclr.py` (CIFAR recipe)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses.py::test_nt_xent_matches_formula",
             "tests/test_bench_cli.py::test_the_bench_references_losses_equal_sslax_losses"),
      results=("Every method on CIFAR-10", "random init", "SimCLR"))

  def check_config(self):
    check_config_value(self.config, "method.temperature", lambda v: v > 0, "a positive number")
    check_loss_block_size(self.config)

  def loss(self, model, batch, method_state, key, step, target=None):
    _, z, n = self.online_and_views(model, batch, key)
    loss, aux = nt_xent_loss(z[:n], z[n:], temperature=self.config.method.temperature,
                             block_size=self.config.method.get("loss_block_size"))
    return loss, {**aux, **collapse_metrics(z[:n])}, method_state
