"""Sequence (and sentence-pair) classification: one label per example, a linear head on the
pretrained network's pooled features (`features`), all of it fine-tuned (or what the masks
leave trainable). Sentence pairs are rows that pack both sentences (`data.packing='segments'`).

BERT's fine-tuning recipe (Devlin et al., NAACL 2019, section 4) on our
pooled features; wav2vec 2.0's few-label fine-tuning (Baevski et al. 2020)
with the convolutional feature encoder frozen (`optim.freeze`).
"""
from __future__ import annotations

from sslax.methods.base import register
from sslax.methods.downstream import Downstream


@register("classify")
class Classify(Downstream):
  """A pretrained network and a linear head over its [B, D] features; see `sslax finetune`."""
