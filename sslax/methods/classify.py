"""Sequence (and sentence-pair) classification: one label per example, a linear head on the
pretrained network's pooled features (`features`), all of it fine-tuned (or what the masks
leave trainable). Sentence pairs are rows that pack both sentences (`data.packing='segments'`).

BERT's fine-tuning recipe (Devlin et al., NAACL 2019, section 4) on our
pooled features; wav2vec 2.0's few-label fine-tuning (Baevski et al. 2020)
with the convolutional feature encoder frozen (`optim.freeze`).
"""
from __future__ import annotations

from sslax.methods.base import MethodCard, register
from sslax.methods.downstream import Downstream


@register("classify")
class Classify(Downstream):
  """A pretrained network and a linear head over its [B, D] features; see `sslax finetune`."""
  card = MethodCard(
      family="transfer",
      paper="Devlin et al. 2019 (fine-tuning, sec. 4); Houlsby et al. 2019, "
            "[Parameter-Efficient Transfer Learning](https://arxiv.org/abs/1902.00751) (adapters)",
      objective="softmax cross-entropy of a linear head over the pretrained network's pooled features, "
                "the network fine-tuned, frozen or adapted (`sslax finetune`)",
      loss="",
      reference="Hugging Face `run_glue.py`; the adapter layout of Houlsby et al.",
      tests=("tests/test_downstream.py::test_finetune_a_pretrained_encoder_in_eval_or_train_mode",
             "tests/test_language_methods.py::test_adapters_start_as_the_identity_and_finetune_trains_only_them"),
      results=("Language: GPT on tinyshakespeare", "full fine-tuning", "adapters"))

