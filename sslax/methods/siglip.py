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
from sslax.methods.base import MethodCard, register
from sslax.methods.image_text import ImageTextMethod


@register("siglip")
class SigLIP(ImageTextMethod):
  """SigLIP as pure functions over the shared TrainState; see `experiments/siglip_flickr8k.py`."""
  card = MethodCard(
      family="contrastive",
      paper="Zhai et al. 2023, [Sigmoid Loss for Language Image Pre-Training](https://arxiv.org/abs/2303.15343)",
      objective="-mean over all image-text pairs of log sigmoid(z_ij (t x_i . y_j + b)), z = +1 on the "
                "diagonal and -1 elsewhere; chunked over devices with ppermute",
      loss="sslax.losses.sigmoid.siglip_loss",
      reference="google-research/big_vision `proj/image_text/siglip` (`sigmoid_loss`, chunked)",
      tests=("tests/test_image_text.py::test_clip_and_siglip_train_and_evaluate_with_a_locked_tower_from_another_run",
             "tests/test_image_text.py::test_siglip_loss_is_the_papers_formula_and_big_visions",
             "tests/test_image_text.py::test_chunked_siglip_equals_the_dense_loss_and_gradients"),
      results=("Image-text: CLIP", "random init (towers of `cpu`)", "SigLIP"))

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
