"""SwAV: the code of one crop, an equipartitioned assignment to prototypes, is predicted from the other crops.

Caron et al., "Unsupervised Learning of Visual Features by Contrasting
Cluster Assignments", NeurIPS 2020, as facebookresearch/swav `main_swav.py`
and solo-learn's `swav.py`:

- encoder -> projector -> l2-normalized embedding -> cosine scores against
  `method.num_prototypes` unit-length prototypes (`prototypes` [D, K]);
- codes by Sinkhorn-Knopp (`sslax.losses.sinkhorn_knopp`, epsilon 0.05, 3
  iterations) over the global batch, of the two high-resolution crops only;
- multi-crop: `method.num_local_crops` low-resolution crops that only predict;
- a queue of each high-resolution crop's past embeddings
  (`method.queue_size`, in `TrainState.method_state`, filled from step 0) joins
  the Sinkhorn batch from step max(`method.queue_start_step`, queue_size /
  batch), when it is full (the reference starts it at an epoch and uses it
  once its last row is written); its scores use the current prototypes;
- the prototypes get no gradient for the first `method.freeze_prototypes_steps`.

Prototype normalization: the reference rescales the prototype rows to unit
length in place before each step; here they are normalized in the forward
pass (`unit_prototypes`), which computes the same scores and, at unit length,
the same update up to its radial part, which the next normalization removes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.augment import eval_transform
from sslax.config import check_config_value, is_positive_int
from sslax.eval import KNN, LinearProbe
from sslax.eval.clusters import ClusterNMI
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.losses import l2_normalize, sinkhorn_knopp, swav_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import SiameseNet, TwoViewMethod, local_crops
from sslax.models import unit_prototypes


class SwAVNet(SiameseNet):
  """SiameseNet (encoder -> projector) and `prototypes` [D, K], one column per prototype."""

  def __init__(self, model_config, projector_config, num_prototypes: int, *, rngs: nnx.Rngs):
    super().__init__(model_config, projector_config, None, rngs=rngs)
    shape = (projector_config.out_dim, num_prototypes)
    self.prototypes = nnx.Param(unit_prototypes(jax.random.normal(rngs.params(), shape, jnp.float32)))

  def embed(self, images: jax.Array, train: bool = True):
    """(l2-normalized embedding [B, D], encoder features)."""
    z, features = self(images, train=train)
    return l2_normalize(z.astype(jnp.float32)), features

  def scores(self, embedding: jax.Array, freeze: jax.Array | bool = False) -> jax.Array:
    """Cosine scores [B, K] of unit embeddings against the unit prototypes."""
    return embedding @ unit_prototypes(self.prototypes[...], freeze)


@register("swav")
class SwAV(TwoViewMethod):
  card = MethodCard(
      family="clustering",
      paper="Caron et al. 2020, [Unsupervised Learning of Visual Features by Contrasting Cluster Assignments]"
            "(https://arxiv.org/abs/2006.09882)",
      objective="cross-entropy of each crop's softmax(scores / 0.1) to the Sinkhorn-Knopp codes of the other "
                "high-resolution crops (swapped prediction); codes equipartitioned over the global batch and a queue",
      loss="sslax.losses.swav_loss",
      reference="facebookresearch/swav `main_swav.py` (`distributed_sinkhorn`); lightly `SwaVLoss`; "
                "solo-learn `swav.py`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_swav.py::test_sinkhorn_matches_the_formula_in_numpy",
             "tests/test_swav.py::test_swav_loss_matches_the_formula_in_numpy",
             "tests/test_swav.py::test_swav_loss_equals_lightly_swav_loss",
             "tests/test_swav.py::test_queue_joins_the_codes_when_full_and_prototypes_thaw"),
      results=("Every method on CIFAR-10", "random init", "SwAV"))

  def check_config(self):
    m, c = "method.", self.config
    nonneg_int = lambda v: isinstance(v, int) and v >= 0  # noqa: E731
    check_config_value(c, m + "num_prototypes", is_positive_int, "a positive integer")
    check_config_value(c, m + "temperature", lambda v: v > 0, "a positive number")
    check_config_value(c, m + "epsilon", lambda v: v > 0, "a positive number")
    check_config_value(c, m + "sinkhorn_iterations", is_positive_int, "a positive integer")
    check_config_value(c, m + "num_local_crops", nonneg_int, "a non-negative integer")
    check_config_value(c, m + "freeze_prototypes_steps", nonneg_int, "a non-negative integer")
    check_config_value(c, m + "queue_start_step", nonneg_int, "a non-negative integer")
    batch = c.train.batch_size
    check_config_value(c, m + "queue_size", lambda v: isinstance(v, int) and v >= 0 and v % batch == 0,
                       f"0 (no queue) or a positive multiple of train.batch_size ({batch})")

  def build_model(self, rngs: nnx.Rngs) -> SwAVNet:
    return SwAVNet(self.config.model, self.config.projector, self.config.method.num_prototypes, rngs=rngs)

  def init_state(self, model, key):
    size = self.config.method.queue_size
    if not size:
      return {}
    return {"queue": jnp.zeros((2, size, self.config.projector.out_dim), jnp.float32)}

  @property
  def queue_from(self) -> int:
    """The first step whose codes use the queue: when it is full and `method.queue_start_step` is reached."""
    m = self.config.method
    return max(m.queue_start_step, m.queue_size // self.config.train.batch_size) if m.queue_size else -1

  def codes(self, model, scores, method_state, step):
    """Sinkhorn codes [2, N, K] of the two high-resolution crops' scores [2, N, K], over the batch
    and, from `queue_from`, the queue's embeddings scored by the current prototypes."""
    m = self.config.method
    sinkhorn = lambda s: sinkhorn_knopp(s, epsilon=m.epsilon, iterations=m.sinkhorn_iterations)  # noqa: E731
    plain = lambda: jnp.stack([sinkhorn(s) for s in scores])  # noqa: E731
    if not m.queue_size:
      return plain()
    n = scores.shape[1]

    def with_queue():
      queue_scores = jax.lax.stop_gradient(model.scores(method_state["queue"]))  # [2, Q, K]
      return jnp.stack([sinkhorn(jnp.concatenate([scores[i], queue_scores[i]]))[:n] for i in range(2)])

    return jax.lax.cond(step >= self.queue_from, with_queue, plain)

  def loss(self, model, batch, method_state, key, step, target=None):
    m = self.config.method
    k_views, k_local = jax.random.split(key)
    _, z, n = self.online_and_views(model, batch, k_views)
    embedding = l2_normalize(z.astype(jnp.float32))
    freeze = step < m.freeze_prototypes_steps
    scores = [model.scores(embedding, freeze).reshape(2, n, -1)]
    if m.num_local_crops:
      # another resolution: one more pass, as the reference groups crops by size
      local, _ = model.embed(local_crops(jax.random.split(k_local, m.num_local_crops), batch["image"], self.config))
      scores.append(model.scores(local, freeze).reshape(m.num_local_crops, n, -1))
    scores = jnp.concatenate(scores, axis=0)
    codes = self.codes(model, jax.lax.stop_gradient(scores[:2]), method_state, step)
    loss, aux = swav_loss(scores, codes, temperature=m.temperature)
    used = step >= self.queue_from if m.queue_size else False
    aux = {**aux, "queue_used": jnp.asarray(used, jnp.float32), **collapse_metrics(embedding[:n])}
    if m.queue_size:
      new = jax.lax.stop_gradient(embedding).reshape(2, n, -1)
      method_state = {"queue": jnp.concatenate([new, method_state["queue"][:, :-n]], axis=1)}
    return loss, aux, method_state

  def cluster_assignments(self, model, inputs) -> jax.Array:
    """[B] index of each image's nearest prototype (evaluation view, frozen), for `ClusterNMI`."""
    embedding, _ = model.embed(eval_transform(inputs["image"], self.config.augment), train=False)
    return jnp.argmax(model.scores(embedding), axis=-1)

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(), ClusterNMI())
