"""SQuAD-style extractive question answering data: questions over a context, answers as character
spans, cut into fixed-length windows for a BERT-style encoder.

Examples are read in TFDS `squad`'s record layout ({"id", "title", "context", "question",
"answers": {"text": [...], "answer_start": [...]}}): from TFDS by name (`squad/v1.1`, XQuAD's
`xquad/<lang>`), or from a local SQuAD JSON file (the official `dev-v1.1.json`, XQuAD's
`xquad.<lang>.json`). `qa_windows` is Hugging Face `run_qa.py`'s `prepare_train_features` /
`prepare_validation_features`: `[CLS] question [SEP] context window [SEP]`, the question cut to
`max_query_len` tokens, windows overlapping by `doc_stride` tokens, and the answer's first and
last tokens as targets, or [CLS] (position 0) when the window does not hold the whole answer.
"""
from __future__ import annotations

import json
import os

import numpy as np


def read_squad_json(path: str) -> list[dict]:
  """The questions of a SQuAD v1.1 JSON file, in file order, as TFDS `squad` records."""
  if not os.path.isfile(path):
    raise ValueError(f"data.paths: expected a SQuAD JSON file, got {path!r}")
  with open(path, encoding="utf-8") as f:
    data = json.load(f)
  if not isinstance(data, dict) or "data" not in data:
    raise ValueError(f"{path}: expected SQuAD JSON ({{'data': [articles], 'version'}}), got {type(data).__name__}")
  out = []
  for article in data["data"]:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        out.append({"id": qa["id"], "title": article.get("title", ""), "context": paragraph["context"],
                    "question": qa["question"],
                    "answers": {"text": [a["text"] for a in qa["answers"]],
                                "answer_start": [int(a["answer_start"]) for a in qa["answers"]]}})
  if not out:
    raise ValueError(f"{path}: expected at least one question, got none")
  return out


def squad_examples(data_config, split: str) -> list[dict]:
  """Split `split` of `data_config`: a local JSON file (`data.paths[split]`) or TFDS by name."""
  if data_config.source == "tfds":
    from sslax.data.builders import tfds_source

    source = tfds_source(data_config.name, split, data_config.get("data_dir"))
    decode = lambda x: x.decode("utf-8") if isinstance(x, bytes) else str(x)
    return [{"id": decode(r["id"]), "title": decode(r["title"]), "context": decode(r["context"]),
             "question": decode(r["question"]),
             "answers": {"text": [decode(t) for t in r["answers"]["text"]],
                         "answer_start": [int(s) for s in r["answers"]["answer_start"]]}}
            for r in (source[i] for i in range(len(source)))]
  paths = dict(data_config.paths)
  if split not in paths:
    raise ValueError(f"data.paths: expected a path for split {split!r}, got splits {sorted(paths)}")
  return read_squad_json(paths[split])


def split_by_article(examples: list[dict], test_fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
  """(train, test) with whole articles (titles) on one side: `test_fraction` of the articles,
  drawn with `seed`, are the test questions (no context is shared between the two)."""
  if not 0 < test_fraction < 1:
    raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction}")
  titles = sorted({e["title"] for e in examples})
  if len(titles) < 2:
    raise ValueError(f"examples: expected at least 2 articles to split, got {len(titles)}")
  k = max(1, int(round(test_fraction * len(titles))))
  test = set(np.random.default_rng(seed).permutation(titles)[:k].tolist())
  return [e for e in examples if e["title"] not in test], [e for e in examples if e["title"] in test]


def qa_windows(examples: list[dict], tok, *, seq_len: int, doc_stride: int, max_query_len: int,
               special_ids: dict) -> dict[str, np.ndarray]:
  """Every example's context cut into windows of `[CLS] question [SEP] context [SEP]`.

  Args:
    examples: TFDS `squad` records (the first answer is the training target).
    tok: a `tokenizers.Tokenizer` (character offsets into the context are read from it).
    seq_len: L, tokens per window.
    doc_stride: tokens shared by consecutive windows (run_qa.py's `doc_stride`).
    max_query_len: question tokens kept.

  Returns:
    {"ids", "segments", "positions", "type_ids": [F, L] int32, "start", "end": [F] int32 (the
    answer's first / last token, 0 when the window lacks it), "example": [F] int32 (its example),
    "offsets": [F, L, 2] int32 (each context token's characters, -1 elsewhere)}.
  """
  queries = tok.encode_batch([e["question"].lstrip() for e in examples], add_special_tokens=False)
  contexts = tok.encode_batch([e["context"] for e in examples], add_special_tokens=False)
  rows = {k: [] for k in ("ids", "type_ids", "start", "end", "example", "offsets", "length")}
  for i, (e, q, c) in enumerate(zip(examples, queries, contexts)):
    q_ids = q.ids[:max_query_len]
    room = seq_len - len(q_ids) - 3
    if room <= doc_stride:
      raise ValueError(f"data.doc_stride: expected fewer than the {room} context tokens a window of "
                       f"data.seq_len={seq_len} holds after a {len(q_ids)}-token question, got {doc_stride}")
    c_ids, c_off = np.asarray(c.ids, np.int32), np.asarray(c.offsets, np.int32).reshape(-1, 2)
    answer = e["answers"]
    a_start = answer["answer_start"][0] if answer["text"] else -1
    a_end = a_start + len(answer["text"][0]) if answer["text"] else -1
    lead = len(q_ids) + 2
    begin = 0
    while True:
      stop = min(begin + room, len(c_ids))
      ids = np.concatenate([[special_ids["cls"]], q_ids, [special_ids["sep"]], c_ids[begin:stop],
                            [special_ids["sep"]]]).astype(np.int32)
      offsets = np.full((seq_len, 2), -1, np.int32)
      offsets[lead: lead + stop - begin] = c_off[begin:stop]
      start = end = 0
      window = c_off[begin:stop]
      if a_start >= 0 and len(window) and window[0, 0] <= a_start and window[-1, 1] >= a_end:
        # the last token starting at or before the answer, the first ending at or after it
        start = lead + int(np.flatnonzero(window[:, 0] <= a_start)[-1])
        end = lead + int(np.flatnonzero(window[:, 1] >= a_end)[0])
      rows["ids"].append(np.pad(ids, (0, seq_len - len(ids)), constant_values=special_ids["pad"]))
      types = np.zeros(seq_len, np.int32)
      types[lead: len(ids)] = 1
      rows["type_ids"].append(types)
      rows["start"].append(start)
      rows["end"].append(end)
      rows["example"].append(i)
      rows["offsets"].append(offsets)
      rows["length"].append(len(ids))
      if stop >= len(c_ids):
        break
      begin += room - doc_stride
  out = {k: np.stack(v).astype(np.int32) for k, v in rows.items()}
  valid = np.arange(seq_len)[None] < out.pop("length")[:, None]
  out["segments"] = valid.astype(np.int32)
  out["positions"] = np.where(valid, np.arange(seq_len, dtype=np.int32)[None], 0).astype(np.int32)
  return out
