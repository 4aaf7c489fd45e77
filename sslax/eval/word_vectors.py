"""Word-vector evaluation: analogies by 3CosAdd and Spearman correlation with human similarity
judgements, as word2vec's `compute-accuracy` and the word-similarity benchmarks report them.

- Analogies (Mikolov et al. 2013a; `questions-words.txt`: `: section` lines, then `a b c d`):
  the answer is the word nearest b - a + c among the `restrict` most frequent words, a, b and
  c excluded, all vectors l2-normalized (3CosAdd, Levy & Goldberg 2014). A question with a
  word outside those words is counted wrong in "accuracy" (as the issue asks: "out-of-vocabulary
  counted as such") and left out of "covered_accuracy" (word2vec's `compute-accuracy` prints
  that one); sections whose name starts with "gram" are syntactic, the others semantic.
- Similarity (`word1 word2 score` lines: WS-353, SimLex-999, MEN): Spearman's rho between the
  cosine of the two words' vectors and the human score, over the pairs with both words in the
  vocabulary, with the coverage.

Words are lower-cased, as the word-level tokenizer lower-cases the corpus. scikit-learn and
SciPy have no analogy evaluation; `scipy.stats.spearmanr` gives the correlation.
"""
from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from scipy.stats import spearmanr

from sslax.models.functional import merge_model


def read_analogies(path: str) -> list[tuple[str, str, str, str, str]]:
  """[(section, a, b, c, d)] from a word2vec questions file, words lower-cased."""
  out, section = [], ""
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
      line = line.strip()
      if not line:
        continue
      if line.startswith(":"):
        section = line[1:].strip()
        continue
      words = line.lower().split()
      if len(words) != 4:
        raise ValueError(f"eval.word_eval.analogy: expected 4 words per question at {path}:{number}, got {line!r}")
      out.append((section, *words))
  if not out:
    raise ValueError(f"eval.word_eval.analogy: expected questions in {path}, got none")
  return out


def read_similarity(path: str) -> list[tuple[str, str, float]]:
  """[(word1, word2, score)] from a `word1 word2 score` file, words lower-cased."""
  out = []
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != 3:
        raise ValueError(f"eval.word_eval.similarity: expected 'word1 word2 score' at {path}:{number}, got {line!r}")
      out.append((fields[0].lower(), fields[1].lower(), float(fields[2])))
  if not out:
    raise ValueError(f"eval.word_eval.similarity: expected word pairs in {path}, got none")
  return out


def _unit(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def analogy_accuracy(vectors: np.ndarray, words: list[str], questions, restrict: int = 30000,
                     chunk: int = 1024) -> dict[str, float]:
  """3CosAdd over `words[:restrict]` (word i has vectors[i]; most frequent first).

  Returns {"accuracy", "covered_accuracy", "coverage", "semantic", "syntactic"} (the last two
  over all questions of their sections, uncovered ones wrong)."""
  words = list(words)[:restrict]
  index = {w: i for i, w in enumerate(words)}
  unit = _unit(np.asarray(vectors)[: len(words)])
  covered = np.array([all(w in index for w in q[1:]) for q in questions])
  syntactic = np.array([q[0].startswith("gram") for q in questions])
  correct = np.zeros(len(questions), bool)
  rows = np.nonzero(covered)[0]
  for start in range(0, len(rows), chunk):
    part = rows[start: start + chunk]
    abcd = np.array([[index[w] for w in questions[i][1:]] for i in part])
    target = unit[abcd[:, 1]] - unit[abcd[:, 0]] + unit[abcd[:, 2]]
    scores = target @ unit.T
    np.put_along_axis(scores, abcd[:, :3], -np.inf, axis=1)  # a, b and c are never the answer
    correct[part] = np.argmax(scores, axis=1) == abcd[:, 3]
  n = len(questions)
  return {"accuracy": float(correct.sum() / n), "coverage": float(covered.mean()),
          "covered_accuracy": float(correct[covered].mean()) if covered.any() else 0.0,
          "semantic": float(correct[~syntactic].mean()) if (~syntactic).any() else 0.0,
          "syntactic": float(correct[syntactic].mean()) if syntactic.any() else 0.0}


def similarity_correlation(vectors: np.ndarray, words: list[str], pairs) -> dict[str, float]:
  """{"spearman", "coverage"} of cosine similarity against the human scores."""
  index = {w: i for i, w in enumerate(words)}
  unit = _unit(vectors)
  found = [(index[a], index[b], s) for a, b, s in pairs if a in index and b in index]
  if len(found) < 2:
    return {"spearman": 0.0, "coverage": len(found) / len(pairs)}
  a, b, human = (np.array(v) for v in zip(*found))
  rho = spearmanr(np.sum(unit[a] * unit[b], axis=1), human).statistic
  return {"spearman": float(rho), "coverage": len(found) / len(pairs)}


def word_vector_metrics(vectors: np.ndarray, words: list[str], word_eval) -> dict[str, float]:
  """Every benchmark of `word_eval` ({"analogy": path, "similarity": {name: path}, "analogy_vocab": n})
  as {"analogy/<metric>", "similarity/<name>", "similarity/<name>_coverage"}."""
  out = {}
  if word_eval.get("analogy"):
    res = analogy_accuracy(vectors, words, read_analogies(word_eval["analogy"]),
                           restrict=int(word_eval.get("analogy_vocab") or 30000))
    out.update({f"analogy/{k}": v for k, v in res.items()})
  for name, path in dict(word_eval.get("similarity") or {}).items():
    res = similarity_correlation(vectors, words, read_similarity(path))
    out[f"similarity/{name}"], out[f"similarity/{name}_coverage"] = res["spearman"], res["coverage"]
  return out


def vocabulary_words(tokenizer, specials) -> tuple[np.ndarray, list[str]]:
  """(ids, words) of a word-level tokenizer's vocabulary in id order, specials left out."""
  vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
  kept = [(i, w) for w, i in vocab if i not in set(specials)]
  return np.array([i for i, _ in kept], np.int64), [w for _, w in kept]


@dataclasses.dataclass(frozen=True)
class WordVectors:
  """Evaluator: `word_vector_metrics` of `method.word_vectors(model)` [V, D] with the run's word-level
  tokenizer's vocabulary (ids in frequency order), on `eval.word_eval`'s files."""
  monitor: bool = True

  def __call__(self, run) -> dict[str, float]:
    word_eval = run.config.eval.get("word_eval")
    if not word_eval:
      return {}
    for path in [word_eval.get("analogy"), *dict(word_eval.get("similarity") or {}).values()]:
      if path and not os.path.isfile(path):
        raise ValueError(f"eval.word_eval: expected an existing file, got {path!r}")
    from sslax.data.tokenize import data_tokenizer

    model = merge_model(run.state.graphdef, run.state.params, run.state.batch_stats)
    table = np.asarray(jax.device_get(run.method.word_vectors(model)))
    ids, words = vocabulary_words(data_tokenizer(run.config.data), run.method.specials)
    return word_vector_metrics(table[ids], words, word_eval)
