"""SigLIP: an image and a text tower trained with the pairwise sigmoid loss.

Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image
Pre-Training" (ICCV 2023): every image-text pair of the global batch is a
binary classification, t * <x, y> + b with t = exp(t') initialized at 10 and
b at -10 (big_vision's SigLIP configs). `method.chunked` computes it as the
paper's Section 3.3: text shards passed around the devices with `ppermute`,
[b, b] logits per device (`sslax.losses.sigmoid`); same loss and gradients.
"""
from __future__ import annotations

from sslax.config import check_config_value
from sslax.losses.sigmoid import siglip_loss, siglip_loss_chunked
from sslax.mesh import make_mesh
from sslax.methods.base import register
from sslax.methods.image_text import ImageTextMethod


@register("siglip")
class SigLIP(ImageTextMethod):
  """SigLIP as pure functions over the shared TrainState; see `experiments/siglip_flickr8k.py`."""

  default_scale_init = 10.0
  default_bias_init = -10.0

  def check_config(self):
    check_config_value(self.config, "method.chunked", lambda v: isinstance(v, bool), "a bool (True or False)")

  def loss(self, model, batch, method_state, key, step, target=None):
    image, text = self.embed_pair(model, batch, key)
    scale, bias = self.scale_and_bias(model)
    if self.config.method.chunked:
      # the mesh the train step shards the batch on: built from the same config as the loop's
      loss, aux = siglip_loss_chunked(image, text, scale=scale, bias=bias, mesh=make_mesh(self.config.mesh))
    else:
      loss, aux = siglip_loss(image, text, scale=scale, bias=bias)
    return loss, {**aux, "logit_scale": scale, "logit_bias": bias}, method_state
