"""Tokenized text in fixed-length rows: the data of BERT and GPT.

A text source (local text / TSV files through their TFDS builder, or a TFDS
text dataset by name) is tokenized once, in file order, packed into rows of
`data.seq_len` tokens and cached next to the prepared datasets; the rows are
then an ordinary random-access source, so shuffling, sharding over
processes and the checkpointed iterator position work as for images.

`data.packing`:
  concat    the whole split as one token stream (documents separated by the
            separator token; the lines of a `lines` file are one document,
            each line ending with "\\n"), cut into rows; attention spans the
            row (BERT's and GPT-2's pretraining, Hugging Face's `group_texts`).
  segments  whole examples packed greedily, in order, into rows; `segments`
            numbers them 1, 2, ... (0 = padding) and `positions` restart at
            each, so an example never attends to another (T5-style packing).
  none      one example per row, padded; keeps each example's label (probes,
            fine-tuning and few-shot scoring on SST-2).

`data.framing`: "cls_sep" wraps each row (concat) or example ([CLS] x [SEP],
BERT) or "eos" ends each document or example with the end-of-text token (GPT).

Records: {"ids", "segments", "positions": [seq_len] int32, "label": int32 (-1 when a row holds
several examples or the data has no labels)}.
Sentence pairs (`data.pair_column` of a TSV file, or `data.pair_key` of a TFDS record, e.g. SNLI's
"hypothesis"): one pair per row, `[CLS] a [SEP] b [SEP]`, "type_ids" [seq_len] int32 (0 for
`[CLS] a [SEP]`, 1 for `b [SEP]`, BERT's segment embeddings), the longer text cut first
(`pair_rows`).
With `data.packing='seq2seq'` a pair is a source and a target instead (translation): the first
text framed as one row ({"ids", "segments", "positions"}), the second as "target_ids",
"target_segments" [seq_len] ("eos" framing on both sides, `seq2seq_rows`).
Word-tagged data (`data.tag_key`, e.g. "ner" of CoNLL files or TFDS `conll2003`): one sentence per
row, "tags" [seq_len] int32 in place of "label", the tag on each word's first token (`tag_rows`).

grain has `ConcatThenSplitIterDataset` for on-the-fly packing; it works on an
iterator, not a random-access source, so per-epoch reshuffling of rows and
the exact checkpointed position would be lost. Packing once into a cached
array keeps both.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from typing import Any, Iterator

import grain
import numpy as np

log = logging.getLogger("sslax")

PACKINGS = ("concat", "segments", "none", "seq2seq")
FRAMINGS = ("cls_sep", "eos")


class PackedTokens:
  """A grain random-access source over packed rows (arrays [N, L], memory-mapped from the cache)."""

  def __init__(self, arrays: dict[str, np.ndarray], skipped_examples=()):
    self.arrays = arrays
    self.skipped_examples = list(skipped_examples)
    self.tag_names: list[str] | None = None  # word-tagged rows: the names of the tag ids, if known

  def __len__(self) -> int:
    return len(self.arrays["ids"])

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {k: np.asarray(v[index]) for k, v in self.arrays.items()}

  def __repr__(self) -> str:
    return f"PackedTokens({len(self)} rows of {self.arrays['ids'].shape[1]} tokens)"


def frame_tokens(tokens, *, seq_len: int, framing: str, special_ids: dict) -> np.ndarray:
  """One example's token ids (no specials) framed to at most `seq_len` ids, int32: "cls_sep"
  [CLS] first seq_len - 2 [SEP] (BERT), "eos" the first seq_len - 1 then the end-of-text id (GPT)."""
  t = np.asarray(tokens, np.int32)
  if framing == "cls_sep":
    return np.concatenate([[special_ids["cls"]], t[: seq_len - 2], [special_ids["sep"]]]).astype(np.int32)
  if framing == "eos":
    return np.concatenate([t[: seq_len - 1], [special_ids["eos"]]]).astype(np.int32)
  raise ValueError(f"data.framing: expected one of {list(FRAMINGS)}, got {framing!r}")


def pack_tokens(token_lists: list[np.ndarray], labels: np.ndarray, *, seq_len: int, packing: str, framing: str,
                special_ids: dict, one_document: bool = False) -> dict[str, np.ndarray]:
  """Packs tokenized examples into rows; see the module docstring.

  Args:
    token_lists: per example, its token ids (no specials).
    labels: [N] int per example (-1: none).
    seq_len: L, tokens per row (specials included).
    packing: "concat", "segments" or "none".
    framing: "cls_sep" or "eos".
    special_ids: {"pad", "cls", "sep"} (cls_sep) or {"pad", "eos"} (eos).
    one_document: under concat, no separator between examples (the lines of one text).

  Returns:
    {"ids", "segments", "positions": [R, L] int32, "label": [R] int32}.
  """
  if packing not in PACKINGS:
    raise ValueError(f"data.packing: expected one of {list(PACKINGS)}, got {packing!r}")
  if framing not in FRAMINGS:
    raise ValueError(f"data.framing: expected one of {list(FRAMINGS)}, got {framing!r}")
  pad = special_ids["pad"]
  cls_sep = framing == "cls_sep"
  if packing == "concat":
    sep = special_ids["sep"] if cls_sep else special_ids["eos"]
    parts = token_lists if one_document else [np.append(t, sep) for t in token_lists]
    stream = np.concatenate(parts).astype(np.int32) if parts else np.zeros((0,), np.int32)
    content = seq_len - 2 if cls_sep else seq_len
    rows = -(-len(stream) // content)
    body = np.full((rows * content,), -1, np.int32)
    body[: len(stream)] = stream
    body = body.reshape(rows, content)
    lengths = np.minimum(content, len(stream) - np.arange(rows) * content)
    if cls_sep:  # [CLS] chunk [SEP]: the [SEP] right after the chunk, also in the last, shorter row
      ids = np.full((rows, seq_len), pad, np.int32)
      ids[:, 0] = special_ids["cls"]
      ids[:, 1:-1] = np.where(body >= 0, body, pad)
      ids[np.arange(rows), lengths + 1] = special_ids["sep"]
      lengths = lengths + 2
    else:
      ids = np.where(body >= 0, body, pad).astype(np.int32)
    valid = np.arange(seq_len)[None] < lengths[:, None]
    return {"ids": ids, "segments": valid.astype(np.int32),
            "positions": np.broadcast_to(np.arange(seq_len, dtype=np.int32), ids.shape).copy(),
            "label": np.full((rows,), -1, np.int32)}

  framed = [frame_tokens(t, seq_len=seq_len, framing=framing, special_ids=special_ids) for t in token_lists]
  if packing == "none":
    row_of = np.arange(len(framed))
  else:  # greedy in order: a new row when the next example does not fit
    row_of, row, used = np.zeros(len(framed), np.int64), 0, 0
    for i, f in enumerate(framed):
      if used + len(f) > seq_len:
        row, used = row + 1, 0
      row_of[i], used = row, used + len(f)
  rows = int(row_of[-1]) + 1 if len(framed) else 0
  ids = np.full((rows, seq_len), pad, np.int32)
  segments = np.zeros((rows, seq_len), np.int32)
  positions = np.zeros((rows, seq_len), np.int32)
  label = np.full((rows,), -1, np.int32)
  fill = np.zeros(rows, np.int64)
  count = np.zeros(rows, np.int64)
  for i, f in enumerate(framed):
    r, start = row_of[i], fill[row_of[i]]
    ids[r, start: start + len(f)] = f
    count[r] += 1
    segments[r, start: start + len(f)] = count[r]
    positions[r, start: start + len(f)] = np.arange(len(f))
    fill[r] += len(f)
    label[r] = labels[i] if count[r] == 1 else -1
  return {"ids": ids, "segments": segments, "positions": positions, "label": label}


def pair_rows(first: list[np.ndarray], second: list[np.ndarray], labels: np.ndarray, *, seq_len: int,
              special_ids: dict) -> dict[str, np.ndarray]:
  """One sentence pair per row: `[CLS] a [SEP] b [SEP]`, padded (BERT's sentence-pair input,
  Devlin et al. 2019, sec. 3). Pairs longer than the row lose tokens from the end of the longer
  text first: the shorter keeps at most half the room (rounded down), the longer the rest, as the
  fast tokenizers' `truncation="longest_first"` that `run_glue.py` uses (the slow Python
  tokenizers, which cut one token at a time, can differ by one token between the two).

  Args:
    first: per pair, the token ids (no specials) of its first text.
    second: per pair, those of its second text.
    labels: [N] int per pair.
    seq_len: L, tokens per row (at least 5: three specials and a token of each text).
    special_ids: {"pad", "cls", "sep"}.

  Returns:
    {"ids", "segments", "positions", "type_ids": [N, L] int32, "label": [N] int32}.
  """
  if seq_len < 5:
    raise ValueError(f"data.seq_len: expected at least 5 tokens for sentence pairs ([CLS] a [SEP] b [SEP]), "
                     f"got {seq_len}")
  n, room = len(first), seq_len - 3
  ids = np.full((n, seq_len), special_ids["pad"], np.int32)
  type_ids = np.zeros((n, seq_len), np.int32)
  lengths = np.zeros(n, np.int64)
  for r, (a, b) in enumerate(zip(first, second)):
    la, lb = len(a), len(b)
    if la + lb > room:  # the shorter keeps up to half the room, the longer the rest
      if la > lb:
        lb = min(lb, room // 2)
        la = room - lb
      else:
        la = min(la, room // 2)
        lb = room - la
    row = np.concatenate([[special_ids["cls"]], a[:la], [special_ids["sep"]], b[:lb], [special_ids["sep"]]])
    ids[r, :len(row)] = row
    type_ids[r, la + 2: len(row)] = 1
    lengths[r] = len(row)
  valid = np.arange(seq_len)[None] < lengths[:, None]
  positions = np.where(valid, np.arange(seq_len, dtype=np.int32)[None], 0).astype(np.int32)
  return {"ids": ids, "segments": valid.astype(np.int32), "positions": positions, "type_ids": type_ids,
          "label": np.asarray(labels, np.int32)}


def seq2seq_rows(first: list[np.ndarray], second: list[np.ndarray], *, seq_len: int, special_ids: dict
                 ) -> dict[str, np.ndarray]:
  """Source and target rows of text pairs, each text cut to seq_len - 1 tokens and ended with
  `eos`: {"ids", "segments", "positions", "target_ids", "target_segments": [N, L] int32, "label"
  [N] (-1)}."""
  out = {}
  for prefix, texts in (("", first), ("target_", second)):
    framed = [frame_tokens(t, seq_len=seq_len, framing="eos", special_ids=special_ids) for t in texts]
    ids = np.full((len(framed), seq_len), special_ids["pad"], np.int32)
    for r, f in enumerate(framed):
      ids[r, :len(f)] = f
    valid = np.arange(seq_len)[None] < np.array([len(f) for f in framed])[:, None]
    out[f"{prefix}ids"], out[f"{prefix}segments"] = ids, valid.astype(np.int32)
  out["positions"] = np.where(out["segments"] > 0, np.arange(seq_len, dtype=np.int32)[None], 0).astype(np.int32)
  out["label"] = np.full((len(first),), -1, np.int32)
  return out


def pair_key(data_config) -> str | None:
  """The record field holding a pair's second text: `data.pair_key`, or "text_b" of a TSV file's
  `data.pair_column`; None for single texts."""
  return data_config.get("pair_key") or ("text_b" if data_config.get("pair_column") else None)


def _decode(text) -> str:
  return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def _texts(source, text_key: str, lines: bool) -> Iterator[str]:
  for i in range(len(source)):
    text = source[i][text_key]
    if isinstance(text, (list, tuple, np.ndarray)):  # the words of a tagged sentence
      text = " ".join(_decode(w) for w in text)
    text = _decode(text)
    yield text + "\n" if lines else text


def tag_rows(token_lists: list[np.ndarray], word_ids: list[list[int | None]], tags: list[np.ndarray], *,
             seq_len: int, framing: str, special_ids: dict) -> dict[str, np.ndarray]:
  """One tagged sentence per row, for token classification (NER, POS tagging).

  A word's tag goes to its first sub-word token; its other tokens, the specials and the padding
  get -1 (no target), as in BERT's NER fine-tuning (Devlin et al. 2019, sec. 5.3). Words cut off
  by `seq_len` lose their tags.

  Args:
    token_lists: per sentence, its token ids (no specials).
    word_ids: per sentence, the word index of each token (None: a token of no word).
    tags: per sentence, one tag id per word.
    seq_len: as `pack_tokens`.
    framing: as `pack_tokens`.
    special_ids: as `pack_tokens`.

  Returns:
    {"ids", "segments", "positions", "tags": [N, L] int32}.
  """
  if framing not in FRAMINGS:
    raise ValueError(f"data.framing: expected one of {list(FRAMINGS)}, got {framing!r}")
  n = len(token_lists)
  ids = np.full((n, seq_len), special_ids["pad"], np.int32)
  out_tags = np.full((n, seq_len), -1, np.int32)
  lead = 1 if framing == "cls_sep" else 0
  room = seq_len - lead - 1
  lengths = np.zeros(n, np.int64)
  for r, (t, w, g) in enumerate(zip(token_lists, word_ids, tags)):
    t = np.asarray(t, np.int32)[:room]
    if lead:
      ids[r, 0] = special_ids["cls"]
    ids[r, lead: lead + len(t)] = t
    ids[r, lead + len(t)] = special_ids["sep"] if lead else special_ids["eos"]
    lengths[r] = lead + len(t) + 1
    previous = None
    for j, word in enumerate(w[: len(t)]):
      if word is not None and word != previous:
        out_tags[r, lead + j] = g[word]
      previous = word
  valid = np.arange(seq_len)[None] < lengths[:, None]
  positions = np.where(valid, np.arange(seq_len, dtype=np.int32)[None], 0).astype(np.int32)
  return {"ids": ids, "segments": valid.astype(np.int32), "positions": positions, "tags": out_tags}


def raw_text_source(data_config, split: str):
  """The untokenized split: local text files through their TFDS builder, or TFDS by name."""
  from sslax.data.builders import tfds_source

  if data_config.source == "text_files":
    from sslax.data.text import text_file_sources

    paths = dict(data_config.paths)
    if split not in paths:
      raise ValueError(f"data.paths: expected a path for split {split!r}, got splits {sorted(paths)}")
    if data_config.get("text_format") in ("conll", "conllu"):
      from sslax.data.conll import CONLL2003_COLUMNS, conll_file_sources

      return conll_file_sources(paths, data_config.get("data_dir"),
                                columns=tuple(data_config.get("conll_columns") or CONLL2003_COLUMNS),
                                separator=data_config.get("conll_separator") or " ",
                                on_bad_example=data_config.get("on_bad_example", "error"),
                                conllu=data_config.get("text_format") == "conllu")[split]
    return text_file_sources(paths, data_config.get("data_dir"),
                             fmt=data_config.get("text_format", "lines"), text_column=data_config.get("text_column"),
                             label_column=data_config.get("label_column", "label"),
                             on_bad_example=data_config.get("on_bad_example", "error"),
                             pair_column=data_config.get("pair_column"),
                             label_names=data_config.get("label_names"))[split]
  if data_config.source == "tfds":
    return tfds_source(data_config.name, split, data_config.get("data_dir"))
  raise ValueError(f"data.source: expected 'text_files' or 'tfds' for token data (data.seq_len is set), "
                   f"got {data_config.source!r}")


def _file_key(data_config, split: str) -> str:
  if data_config.source == "text_files":
    p = dict(data_config.paths)[split]
    return f"{os.path.abspath(p)}:{os.stat(p).st_mtime_ns}"
  return f"tfds:{data_config.name}:{split}"


def _split_range(data_config, split: str) -> tuple[float, float]:
  ranges = dict(data_config.get("split_range") or {})
  lo, hi = ranges.get(split, (0.0, 1.0))
  if not 0.0 <= lo < hi <= 1.0:
    raise ValueError(f"data.split_range.{split}: expected (start, end) with 0 <= start < end <= 1, got {(lo, hi)}")
  return float(lo), float(hi)


def encode_all(tok, items: list, **kwargs) -> list:
  """`tok.encode_batch` over `items` in slices of 10,000 (bounded memory per call)."""
  encodings = []
  for start in range(0, len(items), 10_000):
    encodings += tok.encode_batch(items[start: start + 10_000], add_special_tokens=False, **kwargs)
  return encodings


def _packed_arrays(raw, tok, text_key: str, lines: bool, *, seq_len: int, packing: str, framing: str,
                   special_ids: dict) -> tuple[dict[str, np.ndarray], dict]:
  """A text split tokenized and packed (`pack_tokens`), and its counts."""
  texts = list(_texts(raw, text_key, lines))
  token_lists = [np.asarray(e.ids, np.int32) for e in encode_all(tok, texts)]
  labels = np.array([int(raw[i].get("label", -1)) for i in range(len(raw))], np.int32) \
      if packing == "none" else np.full(len(texts), -1, np.int32)
  arrays = pack_tokens(token_lists, labels, seq_len=seq_len, packing=packing, framing=framing,
                       special_ids=special_ids, one_document=lines)
  return arrays, {"rows": len(arrays["ids"]), "tokens": int(sum(len(t) for t in token_lists)),
                  "examples": len(token_lists)}


def _pair_arrays(raw, tok, text_key: str, second_key: str, *, seq_len: int, special_ids: dict, seq2seq: bool = False
                 ) -> tuple[dict[str, np.ndarray], dict]:
  """A sentence-pair split, one pair per row (`pair_rows`, or `seq2seq_rows`), and its counts."""
  records = [raw[i] for i in range(len(raw))]
  if second_key not in records[0]:
    raise ValueError(f"data.pair_key: expected one of the record's text fields "
                     f"{sorted(k for k in records[0] if k != text_key)}, got {second_key!r}")
  first, second = ([np.asarray(e.ids, np.int32) for e in encode_all(tok, [_decode(r[k]) for r in records])]
                   for k in (text_key, second_key))
  if seq2seq:
    arrays = seq2seq_rows(first, second, seq_len=seq_len, special_ids=special_ids)
    kept = int(arrays["segments"].sum() + arrays["target_segments"].sum()) - 2 * len(records)
  else:
    arrays = pair_rows(first, second, np.array([int(r.get("label", -1)) for r in records], np.int32),
                       seq_len=seq_len, special_ids=special_ids)
    kept = int(arrays["segments"].sum()) - 3 * len(records)
  cut = int(sum(len(a) + len(b) for a, b in zip(first, second))) - kept
  return arrays, {"rows": len(records), "tokens": kept, "tokens_cut": cut}


def _tagged_arrays(raw, tok, text_key: str, tag_key: str, *, seq_len: int, framing: str,
                   special_ids: dict) -> tuple[dict[str, np.ndarray], dict]:
  """A word-tagged split, one sentence per row (`tag_rows`), and its counts."""
  records = [raw[i] for i in range(len(raw))]
  if tag_key not in records[0]:
    raise ValueError(f"data.tag_key: expected one of the record's sequence fields "
                     f"{sorted(k for k in records[0] if k != text_key)}, got {tag_key!r}")
  encodings = encode_all(tok, [[_decode(w) for w in r[text_key]] for r in records], is_pretokenized=True)
  arrays = tag_rows([np.asarray(e.ids, np.int32) for e in encodings], [e.word_ids for e in encodings],
                    [np.asarray(r[tag_key], np.int32) for r in records], seq_len=seq_len, framing=framing,
                    special_ids=special_ids)
  words = int(sum(len(r[tag_key]) for r in records))
  return arrays, {"rows": len(records), "words": words, "words_cut": words - int(np.sum(arrays["tags"] >= 0))}


def packed_text_source(data_config, split: str) -> PackedTokens:
  """Split `split` of the text data `data_config` names, tokenized and packed (cached on first use).

  `data.split_range` {split: (start, end)} keeps that fraction of the split's rows, in file order
  (e.g. {"train": (0, 0.9), "test": (0.9, 1)} on one file: the last 10% held out).
  """
  from sslax.data.builders import DEFAULT_DATA_DIR, writable_dir
  from sslax.data.tokenize import data_tokenizer

  seq_len, packing, framing = int(data_config.seq_len), data_config.get("packing", "concat"), data_config.framing
  special_ids = dict(data_config.special_ids)
  lines = data_config.source == "text_files" and data_config.get("text_format", "lines") == "lines"
  text_key = data_config.get("text_key", "text")
  raw = raw_text_source(data_config, split)
  train_split = data_config.train_split

  def train_texts():  # the tokenizer learns from the training rows' text only (split_range respected)
    source = raw if split == train_split else raw_text_source(data_config, train_split)
    lo, hi = _split_range(data_config, train_split)
    n = len(source)
    rows = grain.MapDataset.source(source)[int(round(lo * n)): int(round(hi * n))]
    second = pair_key(data_config)
    if second:  # both texts of a pair (a translation's target language too)
      return itertools.chain(_texts(rows, text_key, lines), _texts(rows, second, lines))
    return _texts(rows, text_key, lines)

  tok = data_tokenizer(data_config, train_texts)
  tok_hash = hashlib.sha1(tok.to_str().encode()).hexdigest()[:12]
  tag_key, second_key = data_config.get("tag_key"), pair_key(data_config)
  if tag_key and packing != "none":
    raise ValueError(f"data.packing: expected 'none' for word-tagged data (data.tag_key={tag_key!r}: one sentence "
                     f"per row), got {packing!r}")
  seq2seq = packing == "seq2seq"
  if seq2seq and (not second_key or framing != "eos"):
    raise ValueError(f"data.packing: 'seq2seq' expects text pairs (data.pair_column or data.pair_key) framed 'eos', "
                     f"got pair {second_key!r} and framing {framing!r}")
  if second_key and not seq2seq and (packing != "none" or framing != "cls_sep"):
    raise ValueError(f"data.packing / data.framing: expected 'none' / 'cls_sep' for sentence pairs (one "
                     f"[CLS] a [SEP] b [SEP] per row), got {packing!r} / {framing!r}")
  key = json.dumps([_file_key(data_config, split), tok_hash, seq_len, packing, framing, special_ids, lines,
                    text_key, data_config.get("text_column"), data_config.get("on_bad_example", "error"),
                    tag_key, data_config.get("conll_columns"), data_config.get("conll_separator"),
                    data_config.get("text_format")] + ([second_key, list(data_config.get("label_names") or ())]
                                                       if second_key else []))
  root = os.path.join(data_config.get("data_dir") or DEFAULT_DATA_DIR, "packed",
                      f"{split}_{hashlib.sha1(key.encode()).hexdigest()[:12]}")
  fields = ("ids", "segments", "positions", "tags" if tag_key else "label")
  if second_key:
    fields += ("target_ids", "target_segments") if seq2seq else ("type_ids",)
  if not os.path.exists(os.path.join(root, "done")):
    if second_key:
      arrays, stats = _pair_arrays(raw, tok, text_key, second_key, seq_len=seq_len, special_ids=special_ids,
                                   seq2seq=seq2seq)
      log.info("data: sentence-pair split %r: %d pairs, %d tokens (%d cut by data.seq_len=%d)", split, stats["rows"],
               stats["tokens"], stats["tokens_cut"], seq_len)
    elif tag_key:
      arrays, stats = _tagged_arrays(raw, tok, text_key, tag_key, seq_len=seq_len, framing=framing,
                                     special_ids=special_ids)
      log.info("data: tagged split %r: %d sentences, %d words (%d cut by data.seq_len=%d)", split, stats["rows"],
               stats["words"], stats["words_cut"], seq_len)
    else:
      arrays, stats = _packed_arrays(raw, tok, text_key, lines, seq_len=seq_len, packing=packing, framing=framing,
                                     special_ids=special_ids)
      log.info("data: packed split %r: %d examples, %d tokens -> %d rows of %d", split, stats["examples"],
               stats["tokens"], stats["rows"], seq_len)
    writable_dir(root)
    for name in fields:
      np.save(os.path.join(root, name + ".npy"), arrays[name])
    with open(os.path.join(root, "done"), "w") as f:
      json.dump({**stats, "key": key}, f)
  arrays = {name: np.load(os.path.join(root, name + ".npy"), mmap_mode="r") for name in fields}
  lo, hi = _split_range(data_config, split)
  n = len(arrays["ids"])
  a, b = int(round(lo * n)), int(round(hi * n))
  if b <= a:
    raise ValueError(f"data.split_range.{split}: {(lo, hi)} of {n} rows leaves no row (expected at least one)")
  rows = PackedTokens({k: v[a:b] for k, v in arrays.items()}, getattr(raw, "skipped_examples", ()))
  if tag_key:
    rows.tag_names = _source_tag_names(raw, tag_key)
  return rows


def _source_tag_names(raw, tag_key: str) -> list[str] | None:
  """The names of the tag ids (local CoNLL files, or a TFDS dataset's ClassLabel), if known."""
  names = getattr(raw, "tag_names", {}).get(tag_key)
  if names is None:
    try:
      names = list(raw.dataset_info.features[tag_key].feature.names)
    except (AttributeError, KeyError, TypeError):
      names = None
  return names
