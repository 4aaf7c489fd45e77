"""Tokenizers through Hugging Face `tokenizers`: train WordPiece (BERT) or byte-level BPE (GPT-2)
offline on a corpus, save with the run, or load an existing vocabulary.

`tokenizers` is an optional dependency (`pip install -e '.[text]'`); nothing
else in sslax imports it.
"""
from __future__ import annotations

import os
from typing import Iterable

WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BPE_SPECIALS = ("<|endoftext|>", "<|pad|>")


def train_tokenizer(texts: Iterable[str], *, kind: str, vocab_size: int, lowercase: bool = True):
  """Trains a tokenizer on `texts`.

  Args:
    kind: "wordpiece" (BERT: lower-cased, `##` continuation pieces, specials
      [PAD] [UNK] [CLS] [SEP] [MASK]) or "bpe" (GPT-2's byte-level BPE, specials
      <|endoftext|> <|pad|>).
    vocab_size: the target vocabulary size (specials included).

  Returns:
    a `tokenizers.Tokenizer`.
  """
  from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

  if kind == "wordpiece":
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(WORDPIECE_SPECIALS))
  elif kind == "bpe":
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(BPE_SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  else:
    raise ValueError(f"data.tokenizer: expected 'wordpiece', 'bpe' or a tokenizer.json / vocab.txt path, got {kind!r}")
  tok.train_from_iterator(texts, trainer=trainer)
  return tok


def load_tokenizer(path: str):
  """A saved `tokenizer.json`, or a BERT `vocab.txt` (WordPiece, lower-cased)."""
  from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

  if not os.path.exists(path):
    raise ValueError(f"data.tokenizer: expected an existing tokenizer.json or vocab.txt, got {path!r}")
  if path.endswith(".txt"):
    tok = Tokenizer(models.WordPiece.from_file(path, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return tok
  return Tokenizer.from_file(path)


def tokenizer_for_run(spec: str, texts: Iterable[str], workdir: str | None, vocab_size: int):
  """The run's tokenizer: `<workdir>/tokenizer.json` when it exists (a resumed run), else loaded from
  the path `spec` or trained (`spec` = "wordpiece" / "bpe") on `texts`; saved to the workdir."""
  saved = os.path.join(workdir, "tokenizer.json") if workdir else None
  if saved and os.path.exists(saved):
    return load_tokenizer(saved)
  tok = train_tokenizer(texts, kind=spec, vocab_size=vocab_size) if spec in ("wordpiece", "bpe") \
      else load_tokenizer(spec)
  if saved:
    os.makedirs(workdir, exist_ok=True)
    tok.save(saved + ".tmp")
    os.replace(saved + ".tmp", saved)
  return tok
