"""Token tagging (POS, chunks, named entities): one label per token, a linear head on every
token's state (`token_features`), -1 where a token has no tag (a word's later sub-words).

As BERT's CoNLL-2003 fine-tuning (Devlin et al., NAACL 2019, section 5.3):
the tag of each word is predicted at its first sub-word; held-out accuracy
over the tagged tokens, and conlleval's entity F1 when the tags are IOB.
"""
from __future__ import annotations

from sslax.methods.base import register
from sslax.methods.downstream import Downstream


@register("tag")
class Tag(Downstream):
  """A pretrained token model and a linear head over its [B, L, D] token states."""

  per_token = True
