"""Token tagging (POS, chunks, named entities): one label per token, a linear head on every
token's state (`token_features`), -1 where a token has no tag (a word's later sub-words).

As BERT's CoNLL-2003 fine-tuning (Devlin et al., NAACL 2019, section 5.3):
the tag of each word is predicted at its first sub-word; held-out accuracy
over the tagged tokens, and conlleval's entity F1 when the tags are IOB.
"""
from __future__ import annotations

from sslax.methods.base import MethodCard, register
from sslax.methods.downstream import Downstream


@register("tag")
class Tag(Downstream):
  """A pretrained token model and a linear head over its [B, L, D] token states."""
  card = MethodCard(
      family="transfer",
      paper="Devlin et al. 2019, sec. 5.3 (a linear layer on every token, the tag on each word's first "
            "sub-word)",
      objective="cross-entropy of a linear head on every token's last-layer state, only at each word's "
                "first sub-word token; scored by token accuracy and conlleval's entity F1",
      loss="",
      reference="Hugging Face `run_ner.py`; conlleval (IOB1 / IOB2 entity F1)",
      tests=("tests/test_token_classification.py::test_finetune_tags_words_from_the_cli",
             "tests/test_token_classification.py::test_iob_entities_read_iob1_and_iob2_as_conlleval",
             "tests/test_token_classification.py::test_conllu_reads_the_syntactic_words_and_their_upos"),
      results=("Language: GPT on tinyshakespeare", "most frequent tag", "fine-tuned from"))

  per_token = True
