"""Tokenizers through Hugging Face `tokenizers`: train WordPiece (BERT), byte-level BPE (GPT-2) or a
word-level vocabulary (word2vec) offline on a corpus, save with the run, or load an existing
vocabulary.

`tokenizers` is an optional dependency (`pip install -e '.[text]'`); nothing
else in sslax imports it.
"""
from __future__ import annotations

import os
from typing import Iterable

WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BPE_SPECIALS = ("<|endoftext|>", "<|pad|>")
WORD_SPECIALS = ("<pad>", "<unk>", "</s>")
TRAINED = ("wordpiece", "bpe", "word", "bytes")  # the `data.tokenizer` kinds made for the corpus
BYTES_VOCAB_SIZE = len(WORDPIECE_SPECIALS) + 256


def train_tokenizer(texts: Iterable[str], *, kind: str, vocab_size: int, lowercase: bool = True,
                    min_frequency: int = 0):
  """Trains a tokenizer on `texts`.

  Args:
    kind: "wordpiece" (BERT: lower-cased, `##` continuation pieces, specials
      `[PAD] [UNK] [CLS] [SEP] [MASK]`), "bpe" (GPT-2's byte-level BPE, specials
      `<|endoftext|> <|pad|>`) or "word" (word2vec: lower-cased words and punctuation runs,
      ids by descending frequency after the specials `<pad> <unk> </s>`; rarer words are `<unk>`)
      or "bytes" (every UTF-8 byte a token after BERT's specials, the same vocabulary for every
      language and script: a multilingual MLM's; nothing is learned from `texts`).
    vocab_size: the target vocabulary size (specials included; "bytes": exactly 261).
    min_frequency: "word": words seen fewer times are left out (word2vec's `min_count`).

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
  elif kind == "bytes":
    if vocab_size != BYTES_VOCAB_SIZE:
      raise ValueError(f"data.vocab_size: expected {BYTES_VOCAB_SIZE} for the byte-level vocabulary (5 specials + "
                       f"256 bytes), got {vocab_size}")
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(WORDPIECE_SPECIALS)} | {c: len(WORDPIECE_SPECIALS) + i
                                                               for i, c in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(WORDPIECE_SPECIALS))
    return tok
  elif kind == "word":
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()] if lowercase
                                          else [normalizers.NFKC()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins the words with spaces
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(WORD_SPECIALS))
  else:
    raise ValueError(f"data.tokenizer: expected 'wordpiece', 'bpe', 'word', 'bytes' or a tokenizer.json / vocab.txt "
                     f"path, got {kind!r}")
  tok.train_from_iterator(texts, trainer=trainer)
  return tok


def load_tokenizer(path: str):
  """A saved `tokenizer.json`, or a BERT `vocab.txt` (WordPiece, lower-cased)."""
  from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

  if not os.path.isfile(path):
    raise ValueError(f"data.tokenizer: expected an existing tokenizer.json or vocab.txt, got {path!r}")
  if not os.access(path, os.R_OK):
    raise ValueError(f"data.tokenizer: cannot read {path!r} (permission denied)")
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
  from tokenizers import Tokenizer

  from sslax.paths import exists, join, makedirs, read_text, write_text

  saved = join(workdir, "tokenizer.json") if workdir else None  # a folder or a gs:// workdir (sslax.paths)
  if saved and exists(saved):
    return Tokenizer.from_str(read_text(saved))
  tok = train_tokenizer(texts, kind=spec, vocab_size=vocab_size) if spec in TRAINED else load_tokenizer(spec)
  if saved:
    makedirs(workdir)
    write_text(saved, tok.to_str())  # per-process temporary file, then a rename: hosts may share the workdir
  return tok


# which token strings each `data.special_ids` entry may be (BERT's, GPT-2's and RoBERTa's spellings)
SPECIAL_TOKEN_NAMES = {"pad": ("[PAD]", "<|pad|>", "<pad>"), "unk": ("[UNK]", "<unk>"), "cls": ("[CLS]", "<s>"),
                       "sep": ("[SEP]", "</s>"), "mask": ("[MASK]", "<mask>"),
                       "eos": ("<|endoftext|>", "[SEP]", "</s>")}


def check_special_ids(tok, special_ids: dict, where: str) -> None:
  """Each configured special id must be the id the tokenizer gives that special token.

  Raises ValueError naming `data.special_ids.<name>`, the tokenizer's id and the configured one.
  """
  for name, configured in special_ids.items():
    names = SPECIAL_TOKEN_NAMES.get(name, (name,))
    ids = {t: tok.token_to_id(t) for t in names if tok.token_to_id(t) is not None}
    if not ids:
      raise ValueError(f"data.special_ids.{name}: the tokenizer {where} has none of the tokens {list(names)}, "
                       f"but the config uses id {configured}")
    if configured not in ids.values():
      token, actual = next(iter(ids.items()))
      raise ValueError(f"data.special_ids.{name}: expected {actual} (the id of {token} in the tokenizer "
                       f"{where}), got {configured}")


def tokenizer_cache_path(data_config) -> str:
  """Where the tokenizer trained for `data_config` lives: keyed by the training files (path and
  modification time), their format and the tokenizer kind and size, next to the prepared datasets."""
  from sslax.data.builders import DEFAULT_DATA_DIR

  paths = data_config.paths
  train = paths[data_config.train_split]
  train = [train] if isinstance(train, str) else list(train)
  key = "|".join(f"{os.path.abspath(p)}:{os.stat(p).st_mtime_ns}" for p in train)
  key += f"|{data_config.get('text_format', 'lines')}|{data_config.get('text_column')}|{data_config.tokenizer}"
  key += f"|{data_config.vocab_size}" + (f"|min{data_config.min_frequency}" if data_config.get("min_frequency") else "")
  if data_config.get("pair_column") or data_config.get("pair_key"):  # trained on both texts of each pair
    key += f"|pair={data_config.get('pair_column') or data_config.get('pair_key')}"
  import hashlib

  digest = hashlib.sha1(key.encode()).hexdigest()[:12]
  root = os.path.join(data_config.get("data_dir") or DEFAULT_DATA_DIR, "tokenizers")
  return os.path.join(root, f"{data_config.tokenizer}_{data_config.vocab_size}_{digest}.json")


def data_tokenizer(data_config, texts_fn=None):
  """The tokenizer `data_config` names: `data.tokenizer` a tokenizer.json / vocab.txt path, or
  "wordpiece" / "bpe" / "word" trained (once, then cached, see `tokenizer_cache_path`) with
  `data.vocab_size` (and `data.min_frequency` for "word") on the train split's texts (`texts_fn()` yields them). The configured
  `data.special_ids` are checked against it.
  """
  spec = data_config.tokenizer
  if spec in TRAINED:
    path = tokenizer_cache_path(data_config)
    if not os.path.exists(path):
      if texts_fn is None:
        raise ValueError(f"data.tokenizer: no trained {spec!r} tokenizer cached at {path} and no texts to train one")
      tok = train_tokenizer(texts_fn(), kind=spec, vocab_size=int(data_config.vocab_size),
                            min_frequency=int(data_config.get("min_frequency") or 0))
      from sslax.data.builders import writable_dir

      writable_dir(os.path.dirname(path))
      tmp = f"{path}.{os.getpid()}.tmp"  # per process, as above
      tok.save(tmp)
      os.replace(tmp, path)
    tok, where = load_tokenizer(path), path
  else:
    tok, where = load_tokenizer(spec), spec
  check_special_ids(tok, dict(data_config.special_ids), where)
  return tok
