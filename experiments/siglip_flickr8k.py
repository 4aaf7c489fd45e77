"""SigLIP on Flickr8k (variants, data and towers: see image_text_common.py).

Zhai et al. 2023: the pairwise sigmoid loss, t = exp(t') from 10 and b from -10,
computed in chunks across the devices (`method.chunked`: text shards passed
around the mesh, [b, b] logits per device; the same loss as the dense form).
"""
import image_text_common
from image_text_common import image_text_config

VARIANTS = image_text_common.VARIANTS


def get_config(arg: str | None = None):
  c = image_text_config(arg, "siglip")
  del c.method["loss_block_size"]
  c.method.chunked, c.method.scale_init, c.method.bias_init = True, 10.0, -10.0
  return c
