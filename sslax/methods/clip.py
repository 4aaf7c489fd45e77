"""CLIP: an image and a text tower trained with symmetric InfoNCE over the global batch.

Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision" (ICML 2021): logits = t * norm(I) norm(T)^T with a learned
temperature, t initialized at 1 / 0.07 and clamped at 100 (open_clip's
`ClipLoss`; `sslax.losses.clip_loss`, dense or in column blocks). ALIGN (Jia
et al. 2021) is the same objective with its own recipe: a config, not a file
(`experiments/clip_flickr8k.py:align_cpu`: BERT's [CLS] pooling, the scale
learned from 1 as Hugging Face's `AlignModel`).
"""
from __future__ import annotations

from sslax.config import check_loss_block_size
from sslax.losses import clip_loss
from sslax.methods.base import register
from sslax.methods.image_text import ImageTextMethod


@register("clip")
class CLIP(ImageTextMethod):
  """CLIP as pure functions over the shared TrainState; see `experiments/clip_flickr8k.py`."""

  default_scale_init = 1 / 0.07

  def check_config(self):
    check_loss_block_size(self.config)

  def loss(self, model, batch, method_state, key, step, target=None):
    image, text = self.embed_pair(model, batch, key)
    scale, bias = self.scale_and_bias(model)
    loss, aux = clip_loss(image, text, logit_scale=scale, block_size=self.config.method.get("loss_block_size"))
    return loss, {**aux, "logit_scale": scale, "logit_bias": bias}, method_state
