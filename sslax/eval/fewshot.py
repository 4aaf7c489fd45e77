"""Few-shot (in-context) classification with a causal language model (Brown et al., 2020).

Each test example becomes a prompt of k labelled demonstrations followed by
the example; every choice's continuation is scored by its log-likelihood
under the model, and the highest-scoring choice is the prediction. Nothing
is trained.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def choice_log_likelihoods(model, sequences: Sequence[Sequence[int]], starts: Sequence[int], *,
                           batch_size: int = 64) -> np.ndarray:
  """Sum of log p(token | everything before it) over tokens[start:] of each sequence.

  Sequences longer than `model.max_len` keep their last `max_len` tokens (the
  scored continuation is always at the end). Rows are right-padded, which a
  causal model never sees.

  Args:
    model: a causal LM, `model(ids, valid) -> (logits [B, L, V], ...)`.
    sequences: token ids (prompt + continuation) per row.
    starts: index in each sequence where the scored continuation begins.

  Returns:
    [N] float64 log-likelihoods.
  """
  max_len = model.max_len
  rows, first = [], []
  for seq, start in zip(sequences, starts):
    cut = max(0, len(seq) - max_len)
    if start - cut < 1:
      raise ValueError(f"a continuation of {len(seq) - start} tokens leaves no context within model.max_len="
                       f"{max_len}")
    rows.append(list(seq[cut:]))
    first.append(start - cut)
  length = max(len(r) for r in rows)

  @jax.jit
  def score(ids, valid, target_mask):
    logits, _ = model(ids, valid)
    logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
    tok = jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
    return jnp.sum(tok * target_mask[:, 1:], axis=1)

  out = []
  for i in range(0, len(rows), batch_size):
    chunk = rows[i:i + batch_size]
    n = len(chunk)
    ids = np.zeros((batch_size, length), np.int32)
    valid = np.zeros((batch_size, length), bool)
    target = np.zeros((batch_size, length), np.float32)
    for j, r in enumerate(chunk):
      ids[j, :len(r)], valid[j, :len(r)] = r, True
      target[j, first[i + j]:len(r)] = 1.0
    out.append(np.asarray(score(ids, valid, target))[:n])
  return np.concatenate(out).astype(np.float64)


def few_shot_accuracy(model, tokenizer, train_examples: Sequence[tuple[str, int]],
                      test_examples: Sequence[tuple[str, int]], *, shots: int, choices: Sequence[str],
                      template: str = "Review: {text}\nSentiment:", separator: str = "\n\n", seed: int = 0,
                      batch_size: int = 64) -> dict[str, float]:
  """In-context accuracy with `shots` demonstrations per prompt.

  Demonstrations are drawn per test example (seeded) from `train_examples`,
  as balanced over the labels as `shots` allows; a demonstration is
  `template` + choices[label]. Each choice is scored as a continuation of
  the prompt (with its leading space, e.g. " positive").

  "calibrated_accuracy" is contextual calibration (Zhao et al., ICML 2021):
  each choice's score minus its score for the same prompt with the content-free
  text "N/A", which removes a small model's bias towards one label word.

  Returns:
    {"accuracy", "calibrated_accuracy", "shots", "num_examples", "truncated": prompts cut to fit
    model.max_len}.
  """
  rng = np.random.default_rng(seed)
  by_label = {c: [t for t, y in train_examples if y == c] for c in range(len(choices))}
  choice_ids = [tokenizer.encode(" " + c.strip(), add_special_tokens=False).ids for c in choices]
  prompts = {"example": [], "content_free": []}
  for text, _ in test_examples:
    demos = []
    for k in range(shots):
      label = int(rng.permutation(len(choices))[0]) if k % len(choices) == 0 else (demos[-1][1] + 1) % len(choices)
      pool = by_label[label]
      demos.append((pool[int(rng.integers(len(pool)))], label))
    order = rng.permutation(len(demos))
    context = "".join(template.format(text=demos[i][0]) + " " + choices[demos[i][1]].strip() + separator
                      for i in order)
    # the content-free prompt keeps this example's demonstrations
    prompts["example"].append(context + template.format(text=text))
    prompts["content_free"].append(context + template.format(text="N/A"))
  sequences, starts, truncated = [], [], 0
  for kind in ("example", "content_free"):
    for prompt in prompts[kind]:
      ids = tokenizer.encode(prompt, add_special_tokens=False).ids
      truncated += kind == "example" and len(ids) + max(len(c) for c in choice_ids) > model.max_len
      for c in choice_ids:
        sequences.append(ids + c)
        starts.append(len(ids))
  scores = choice_log_likelihoods(model, sequences, starts, batch_size=batch_size).reshape(2, len(test_examples), -1)
  labels = np.array([y for _, y in test_examples])
  return {"accuracy": float(np.mean(scores[0].argmax(1) == labels)),
          "calibrated_accuracy": float(np.mean((scores[0] - scores[1]).argmax(1) == labels)), "shots": shots,
          "num_examples": len(test_examples), "truncated": int(truncated)}
