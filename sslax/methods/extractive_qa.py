"""Extractive question answering on a pretrained encoder (Devlin et al. 2019, sec. 4.2, SQuAD
v1.1): a start and an end vector over every token's last-layer state (one linear layer of 2
outputs), softmax over the window's positions, the loss the mean of the start and end
cross-entropies; all of it fine-tuned through the shared train step.

Rows are `sslax.data.squad.qa_windows`: `[CLS] question [SEP] context [SEP]` with type ids and
{"start", "end"} targets (0, the [CLS], when the window lacks the answer, as `run_qa.py`).
Spans are read back and scored by `sslax.eval.squad` (n-best over windows, official EM / F1);
`experiments/squad_qa.py` runs the whole task.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from sslax.data.modality import Combined, Labels
from sslax.methods.base import MethodCard, register
from sslax.methods.downstream import Downstream

TARGETS = ("start", "end")


@register("extractive_qa")
class ExtractiveQA(Downstream):
  """Start / end logits [B, L, 2] from the backbone's `token_features` (a `TokenMethod` reading
  sentence pairs); `finetune.num_classes` is 2 (start, end)."""
  card = MethodCard(
      family="transfer",
      paper="Devlin et al. 2019, [BERT](https://arxiv.org/abs/1810.04805) sec. 4.2; Rajpurkar et al. 2016, "
            "[SQuAD](https://arxiv.org/abs/1606.05250)",
      objective="cross-entropy of the answer's first and last token over the window's positions",
      loss="",
      reference="Hugging Face `run_qa.py` (`prepare_train_features`, `postprocess_qa_predictions`); SQuAD's "
                "`evaluate-v1.1.py`",
      tests=("tests/test_extractive_qa.py::test_official_metric_on_a_hand_example",
             "tests/test_extractive_qa.py::test_windows_hold_the_answer_tokens",
             "tests/test_extractive_qa.py::test_finetune_finds_the_answer_span"),
      results=("Extractive QA on SQuAD v1.1 dev split by article (issue 32)", "random init", "pretrained"))

  per_token = True
  driver = "experiments/squad_qa.py"  # the script that runs the task (windows, fine-tuning, scoring)

  @property
  def label_key(self) -> str:
    return "start"

  @property
  def inputs(self) -> Combined:
    length = int(self.config.data.seq_len)
    return Combined((self.backbone.inputs, *(Labels(k, num_classes=length) for k in TARGETS)))

  def loss(self, model, batch, method_state, key, step, target=None):
    logits = self.logits(model, batch, key if self.config.finetune.get("train_mode") else None)
    metrics, total = {}, 0.0
    for i, name in enumerate(TARGETS):
      ce = optax.softmax_cross_entropy_with_integer_labels(logits[..., i], batch[name])
      total = total + jnp.mean(ce) / len(TARGETS)
      metrics[f"{name}_accuracy"] = jnp.mean(jnp.argmax(logits[..., i], -1) == batch[name])
    return total, metrics, method_state

  def span_logits(self, model, inputs) -> jax.Array:
    """[B, L, 2] start and end logits (evaluation mode)."""
    return self.logits(model, inputs)

  def evaluators(self):
    return ()  # spans are scored against the contexts' text: sslax.eval.squad
