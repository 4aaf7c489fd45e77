"""CLIP on Flickr8k (variants, data and towers: see image_text_common.py).

Radford et al. 2021: symmetric InfoNCE over the global batch, the temperature
learned from 1 / 0.07 and clamped at 100.

align_cpu: ALIGN's recipe on the `cpu` budget (Jia et al. 2021; Hugging Face's
`AlignModel`): the same loss, the text tower pooled at [CLS], the logit scale
learned from 1 (temperature 1). Its label smoothing of 0.1 and EfficientNet
image tower are not reproduced here.
"""
import image_text_common
from image_text_common import image_text_config

VARIANTS = (*image_text_common.VARIANTS, "align_cpu")


def get_config(arg: str | None = None):
  if arg == "align_cpu":
    c = image_text_config("cpu", "clip")
    c.text.pooling, c.method.scale_init = "cls", 1.0
    return c
  return image_text_config(arg, "clip")
