"""MoCo: queries from the online encoder against keys from a momentum (EMA) encoder.

v2 (default): He et al., "Momentum Contrast for Unsupervised Visual
Representation Learning" (CVPR 2020) with Chen et al.'s v2 MLP head and
augmentations (arXiv:2003.04297), symmetrized over the two views as
solo-learn's MoCo V2+: one FIFO queue of past keys per view, shape
[2, K, D], part of `TrainState.method_state` and filled from the global batch.
Shuffling BN is not needed: batch norm here sees the whole global batch.
v3 (`method.version = "v3"`): Chen, Xie, He (ICCV 2021): a predictor on the
online branch, in-batch keys, no queue.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sslax.config import check_config_value, check_loss_block_size
from sslax.eval.collapse import collapse_metrics
from sslax.losses import l2_normalize, moco_loss, moco_v3_loss
from sslax.methods.base import MethodCard, register
from sslax.methods.two_view import MomentumMixin, SiameseNet, TwoViewMethod


def enqueue(queue: jax.Array, keys: jax.Array, ptr: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Writes keys [V, N, D] into queue [V, K, D] at rows ptr..ptr+N (K % N == 0); returns (queue, new ptr)."""
  n, size = keys.shape[1], queue.shape[1]
  queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (0, ptr, 0))
  return queue, (ptr + n) % size


def init_queues(key: jax.Array, size: int, dim: int) -> dict[str, jax.Array]:
  """Two FIFO queues [2, size, dim] (one per view) and their write pointer; as the reference, the
  queues start as random unit vectors."""
  return {"queue": l2_normalize(jax.random.normal(key, (2, size, dim), jnp.float32)),
          "queue_ptr": jnp.zeros((), jnp.int32)}


def two_queue_loss(queries, keys, state, *, temperature: float, block_size: int | None = None):
  """MoCo v2+'s symmetrized InfoNCE with a queue per view: queries of view 0 against the keys of
  view 1 and queue 1, queries of view 1 against the keys of view 0 and queue 0; then both views'
  keys enter their queues (`init_queues` state). queries, keys: pairs of [N, D].

  Returns (loss, accuracy, new state)."""
  queue = state["queue"]
  l1, aux1 = moco_loss(queries[0], keys[1], queue[1], temperature=temperature, block_size=block_size)
  l2, aux2 = moco_loss(queries[1], keys[0], queue[0], temperature=temperature, block_size=block_size)
  new_queue, ptr = enqueue(queue, l2_normalize(jnp.stack(keys)), state["queue_ptr"])
  return (l1 + l2) / 2, (aux1["accuracy"] + aux2["accuracy"]) / 2, {"queue": new_queue, "queue_ptr": ptr}


@register("moco")
class MoCo(MomentumMixin, TwoViewMethod):
  card = MethodCard(
      family="contrastive",
      paper="He et al. 2020, [Momentum Contrast](https://arxiv.org/abs/1911.05722); Chen et al. 2020 (v2), "
            "2021 (v3)",
      objective="InfoNCE of each query against its momentum-encoder key and a queue of past keys (v2), or "
                "against the other view's keys in the batch (v3)",
      loss="sslax.losses.moco_loss",
      reference="facebookresearch/moco `builder.py`, moco-v3; solo-learn `mocov2plus.py`",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_losses_moco_dino.py::test_moco_loss_matches_formula",
             "tests/test_methods.py::test_moco_stop_and_resume_is_exact_queue_included"),
      results=("Every method on CIFAR-10", "random init", "MoCo v2+"))

  def check_config(self):
    self.check_momentum()
    check_config_value(self.config, "method.temperature", lambda v: v > 0, "a positive number")
    check_config_value(self.config, "method.version", lambda v: v in ("v2", "v3"), "'v2' or 'v3'")
    check_loss_block_size(self.config)
    if self.config.method.version == "v2":
      batch = self.config.train.batch_size
      check_config_value(self.config, "method.queue_size",
                         lambda v: isinstance(v, int) and v > 0 and v % batch == 0,
                         f"a positive multiple of train.batch_size ({batch})")

  def build_model(self, rngs):
    predictor = self.config.predictor if self.config.method.version == "v3" else None
    return SiameseNet(self.config.model, self.config.projector, predictor, rngs=rngs)

  def init_state(self, model, key):
    if self.config.method.version == "v3":
      return {}
    return init_queues(key, self.config.method.queue_size, self.config.projector.out_dim)

  def loss(self, model, batch, method_state, key, step, target=None):
    x, z, n = self.online_and_views(model, batch, key)
    k, _ = target(x, train=True)
    k = jax.lax.stop_gradient(k)
    temperature = self.config.method.temperature
    block = self.config.method.get("loss_block_size")
    if self.config.method.version == "v3":
      p = model.predict(z, train=True)
      loss, aux = moco_v3_loss(p[:n], p[n:], k[:n], k[n:], temperature=temperature, block_size=block)
      return loss, {**aux, **collapse_metrics(z[:n])}, method_state
    loss, accuracy, method_state = two_queue_loss((z[:n], z[n:]), (k[:n], k[n:]), method_state,
                                                  temperature=temperature, block_size=block)
    return loss, {"accuracy": accuracy, **collapse_metrics(z[:n])}, method_state
