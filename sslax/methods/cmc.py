"""CMC: one encoder per view of an image (its lightness L and its colour ab), contrasted across views.

Tian, Krishnan, Isola, "Contrastive Multiview Coding", ECCV 2020, as
HobbitLong/CMC: one augmented crop, converted to CIE Lab on device
(`sslax.augment.color`), is split into L (1 channel) and ab (2 channels); each
goes through its own encoder and projector (`model` with the channels
replaced, and `model.width` per view: the paper halves each view's network);
the l2-normalized embeddings are contrasted across views with InfoNCE in both
directions, over the global batch (`method.queue_size` 0), or against a FIFO
queue of past embeddings of the other view (`method.queue_size` > 0; the
reference's memory bank holds every training image, ours the most recent
ones, MoCo's form). The probes read the two encoders' pooled features,
concatenated.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.augment.color import as_rgb, rgb_to_lab
from sslax.config import check_config_value
from sslax.data.modality import Images
from sslax.eval import KNN, LinearProbe
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.losses import clip_loss
from sslax.methods.base import Method, MethodCard, register
from sslax.methods.moco import init_queues, two_queue_loss
from sslax.methods.two_view import SiameseNet, resnet_stage_features

def lab_views(rgb: jax.Array) -> dict[str, jax.Array]:
  """[B, H, W, 3] RGB (or [B, H, W, 1] gray) in [0, 1] -> {"L": [B, H, W, 1] (L - 50) / 50,
  "ab": [B, H, W, 2] ab / 110}."""
  lab = rgb_to_lab(as_rgb(rgb))
  return {"L": (lab[..., :1] - 50.0) / 50.0, "ab": lab[..., 1:] / 110.0}


class CMCNet(nnx.Module):
  """A SiameseNet (encoder -> projector) per view: `views {"L", "ab"} -> {name: (z, features)}`."""

  def __init__(self, model_config, projector_config, *, rngs: nnx.Rngs):
    def net(channels):
      c = ml_collections.ConfigDict(model_config.to_dict())
      c.in_channels = channels
      return SiameseNet(c, projector_config, rngs=rngs)

    self.l_net = net(1)
    self.ab_net = net(2)

  def nets(self) -> dict:
    return {"L": self.l_net, "ab": self.ab_net}

  def encode(self, views: dict[str, jax.Array], train: bool = False) -> jax.Array:
    return jnp.concatenate([self.l_net.encode(views["L"], train), self.ab_net.encode(views["ab"], train)], -1)

  def __call__(self, views: dict[str, jax.Array], train: bool = True):
    return {name: net(views[name], train=train) for name, net in self.nets().items()}


@register("cmc")
class CMC(Method):
  """CMC on the shared train step; see `experiments/cmc_cifar10.py`."""
  card = MethodCard(
      family="contrastive",
      paper="Tian et al. 2020, [Contrastive Multiview Coding](https://arxiv.org/abs/1906.05849)",
      objective="InfoNCE between the L encoder's and the ab encoder's embeddings of the same image, both "
                "directions, against the other images of the global batch or a queue of past embeddings",
      loss="sslax.losses.clip_loss",
      reference="HobbitLong/CMC (`train_CMC.py`, `NCEAverage`); in-batch negatives as CLIP",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_colorization.py::test_cmc_loss_is_infonce_across_the_lab_views"),
      results=("Every method on CIFAR-10", "random init", "CMC, L vs ab"))

  @property
  def inputs(self) -> Images:
    size = self.config.data.get("image_size")
    # method.image_channels 1: grayscale records read as gray RGB (an empty ab view: for smoke tests)
    return Images(channels=int(self.config.method.get("image_channels", 3)),
                  image_size=None if size is None else tuple(size), dataset=self.config.data.get("name", ""))

  def check_config(self):
    c = self.config
    check_config_value(c, "augment.mean", lambda v: all(x == 0 for x in v),
                       "zeros (the method turns [0, 1] RGB into Lab itself)")
    check_config_value(c, "augment.std", lambda v: all(x == 1 for x in v), "ones")
    for key in ("grayscale_prob",):
      check_config_value(c, f"augment.{key}", lambda v: v == 0.0, "0.0 (grayscale leaves the ab view empty)")
    check_config_value(c, "method.temperature", lambda v: v > 0, "a positive number")
    batch = c.train.batch_size
    check_config_value(c, "method.queue_size", lambda v: isinstance(v, int) and v >= 0 and v % batch == 0,
                       f"0 (in-batch negatives) or a positive multiple of train.batch_size ({batch})")

  def build_model(self, rngs: nnx.Rngs) -> CMCNet:
    return CMCNet(self.config.model, self.config.projector, rngs=rngs)

  def init_state(self, model, key):
    size = self.config.method.queue_size
    if not size:
      return {}
    return init_queues(key, size, self.config.projector.out_dim)  # past embeddings of L (0) and ab (1)

  def loss(self, model, batch, method_state, key, step, target=None):
    views = lab_views(augment_batch(key, batch["image"], self.config.augment))
    out = model(views, train=True)
    z_l, z_ab = out["L"][0], out["ab"][0]
    t = self.config.method.temperature
    if not self.config.method.queue_size:
      loss, aux = clip_loss(z_l, z_ab, logit_scale=1.0 / t)
    else:  # each view against the other's embedding and the other's queue of past embeddings
      loss, accuracy, method_state = two_queue_loss((z_l, z_ab), (z_l, z_ab), method_state, temperature=t)
      aux = {"accuracy": accuracy}
    return loss, {**aux, **collapse_metrics(z_l)}, method_state

  def _views(self, inputs):
    return lab_views(eval_transform(inputs["image"], self.config.augment))  # mean 0, std 1: [0, 1] RGB

  def features(self, model, inputs) -> jax.Array:
    """Frozen features [B, D_L + D_ab]: both encoders' pooled outputs of the evaluation view, concatenated."""
    return model.encode(self._views(inputs), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    views = self._views(inputs)
    l = resnet_stage_features(model.l_net.encoder, views["L"])
    ab = resnet_stage_features(model.ab_net.encoder, views["ab"])
    return {name: jnp.concatenate([l[name], ab[name]], -1) for name in l}

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe())
