"""Extractive question answering, scored as SQuAD v1.1 scores it (Rajpurkar et al., EMNLP 2016).

- `exact_match` / `f1`: the official `evaluate-v1.1.py` — answers normalized (lower-cased,
  punctuation and the articles a / an / the removed, whitespace collapsed), the maximum over a
  question's reference answers, a question without a prediction scored 0, both x 100.
- `best_answers`: Hugging Face `run_qa.py`'s `postprocess_qa_predictions` for v1.1 — for every
  window (feature) of a question's context, the `n_best` highest start and end logits; a pair is
  a candidate when both tokens are in the context, end >= start and at most `max_answer_length`
  tokens apart; its score is start + end logit; the best candidate over all windows is mapped
  back to the context's characters through the token offsets. No candidate: the empty answer.

These are the reference's own definitions written again (the `evaluate` package's "squad" metric
is a copy of the script; neither is a dependency here).
"""
from __future__ import annotations

import collections
import re
import string

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
  """Lower-case, drop punctuation, drop articles, collapse whitespace (the official order)."""
  s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
  return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, truth: str) -> float:
  return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
  """Token F1 of the normalized answers (0 when they share no token)."""
  pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
  same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
  if same == 0:
    return 0.0
  precision, recall = same / len(pred), same / len(gold)
  return 2 * precision * recall / (precision + recall)


def squad_scores(answers: dict[str, list[str]], predictions: dict[str, str]) -> dict[str, float]:
  """{"exact_match", "f1"} x 100 over the questions of `answers` (id -> reference answers); a
  question missing from `predictions` counts 0, as the official script."""
  if not answers:
    raise ValueError("answers: expected at least one question to score, got none")
  em = f = 0.0
  for qid, truths in answers.items():
    if qid not in predictions:
      continue
    em += max(exact_match(predictions[qid], t) for t in truths)
    f += max(f1(predictions[qid], t) for t in truths)
  return {"exact_match": 100.0 * em / len(answers), "f1": 100.0 * f / len(answers)}


def best_answers(start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray, feature_example: np.ndarray,
                 contexts: list[str], *, n_best: int = 20, max_answer_length: int = 30) -> list[str]:
  """The predicted answer text of every example.

  Args:
    start_logits, end_logits: [F, L] per window (feature) and token.
    offsets: [F, L, 2] int, each token's (start, end) characters in its example's context; -1 for
      tokens outside the context (question, specials, padding).
    feature_example: [F] int, the example each window belongs to.
    contexts: per example, its context.

  Returns:
    per example, its answer ("" when no window has a valid span).
  """
  best: dict[int, tuple[float, str]] = {}
  for f in range(len(feature_example)):
    ex, off = int(feature_example[f]), offsets[f]
    starts = np.argsort(start_logits[f])[::-1][:n_best]
    ends = np.argsort(end_logits[f])[::-1][:n_best]
    for s in starts:
      if off[s, 0] < 0:
        continue
      for e in ends:
        if off[e, 0] < 0 or e < s or e - s + 1 > max_answer_length:
          continue
        score = float(start_logits[f, s] + end_logits[f, e])
        if ex not in best or score > best[ex][0]:
          best[ex] = (score, contexts[ex][off[s, 0]: off[e, 1]])
  return [best[i][1] if i in best else "" for i in range(len(contexts))]


def predict_answers(method, state, mesh, windows: dict, contexts: list[str], *, n_best: int = 20,
                    max_answer_length: int = 30, batch_size: int = 256) -> list[str]:
  """Every example's answer from a fine-tuned `extractive_qa` method: start / end logits of all
  its windows (`sslax.data.squad.qa_windows` output, in a `PackedTokens`-style dict), then
  `best_answers`."""
  from sslax.data.packing import PackedTokens
  from sslax.eval.features import extract_features_and_labels, make_feature_fn

  source = PackedTokens({k: windows[k] for k in method.inputs.keys})
  fn = make_feature_fn(method, mesh, features=method.span_logits)
  logits, _ = extract_features_and_labels(method, state, source, mesh, label_keys=(), batch_size=batch_size,
                                          feature_fn=fn)
  return best_answers(logits[..., 0], logits[..., 1], windows["offsets"], windows["example"], contexts,
                      n_best=n_best, max_answer_length=max_answer_length)
