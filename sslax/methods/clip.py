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
from sslax.methods.base import MethodCard, register
from sslax.methods.image_text import ImageTextMethod


@register("clip")
class CLIP(ImageTextMethod):
  """CLIP as pure functions over the shared TrainState; see `experiments/clip_flickr8k.py`."""
  card = MethodCard(
      family="contrastive",
      paper="Radford et al. 2021, [CLIP](https://arxiv.org/abs/2103.00020); Jia et al. 2021, "
            "[ALIGN](https://arxiv.org/abs/2102.05918); Zhai et al. 2022, [LiT](https://arxiv.org/abs/2111.07991)",
      objective="symmetric InfoNCE over the image-text similarity matrix of the global batch, with a "
                "learned logit scale",
      loss="sslax.losses.clip_loss",
      reference="openai/CLIP (paper's pseudo-code), mlfoundations/open_clip `loss.py` (`ClipLoss`)",
      tests=("tests/test_image_text.py::test_clip_and_siglip_train_and_evaluate_with_a_locked_tower_from_another_run",
             "tests/test_image_text.py::test_recall_at_k_on_a_hand_built_similarity_matrix"),
      results=("Image-text: CLIP", "random init", "CLIP", "ALIGN"))

  default_scale_init = 1 / 0.07

  def check_config(self):
    check_loss_block_size(self.config)

  def loss(self, model, batch, method_state, key, step, target=None):
    image, text = self.embed_pair(model, batch, key)
    scale, bias = self.scale_and_bias(model)
    loss, aux = clip_loss(image, text, logit_scale=scale, block_size=self.config.method.get("loss_block_size"))
    return loss, {**aux, "logit_scale": scale, "logit_bias": bias}, method_state
