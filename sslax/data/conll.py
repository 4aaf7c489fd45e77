"""Word-tagged text in the CoNLL layout -> a TFDS builder -> array_record, read with grain.

One word per line, its columns separated by `data.conll_separator` (CoNLL-2003:
`EU NNP B-NP B-ORG`), a blank line (or `-DOCSTART-`) between sentences. The
columns are named by `data.conll_columns`; the first is the word ("tokens"),
the others are tags. Records: {"tokens": [bytes], <tag column>: [int]}, the
layout of TFDS's `conll2003`, so a token-classification config reads local
files and the TFDS dataset by name alike.

TFDS's `ConllDatasetBuilder` gives the features and the array_record output;
its example generator stops with a bare "Mismatch in the number of features"
(no file, no line), yields an empty last example when a file ends with a blank
line, and needs the tag names fixed in advance. So the reading is ours: a bad
line is an error naming file and line, or (data.on_bad_example='skip') its
sentence is left out and counted; the tag names of a column not in CoNLL-2003's
are collected from the files (sorted, so ids are stable across runs and splits).

CoNLL-U (Universal Dependencies, `data.text_format='conllu'`): ten tab-separated columns, `#`
comment lines, multi-word token ranges (`1-2`) and empty nodes (`8.1`); the syntactic words'
FORM, UPOS and XPOS are read, as the records {"tokens", "upos", "xpos"} (CONLLU_COLUMNS).
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from sslax.data.builders import BadExampleError, LocalFiles, make_local_builder, prepared_sources

CONLL2003_COLUMNS = ("tokens", "pos", "chunks", "ner")
CONLLU_COLUMNS = ("tokens", "upos", "xpos")
# Universal Dependencies' part-of-speech tags (universaldependencies.org/u/pos), sorted: the ids of
# "upos" in every treebank, so that a tagger trained on one language reads another's ids alike
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
             "SCONJ", "SYM", "VERB", "X")
_CONLLU_FIELDS = (1, 3, 4)  # FORM, UPOS, XPOS of ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC


def read_conll_sentences(path: Path, num_columns: int, separator: str, conllu: bool = False
                         ) -> Iterator[tuple[int, list[list[str]] | BadExampleError]]:
  """Yields (first line number, the sentence's rows of `num_columns` fields, or a BadExampleError
  naming path:line) for each sentence of a CoNLL file; with `conllu`, of a CoNLL-U file (the rows
  are CONLLU_COLUMNS of its syntactic words)."""
  rows: list[list[str]] = []
  start, bad = 0, None
  with open(path, encoding="utf-8", errors="strict") as f:
    for number, line in enumerate(f, start=1):
      line = line.rstrip("\n").rstrip("\r")
      if not line.strip() or line.startswith("-DOCSTART-"):
        if rows or bad:
          yield start, bad or rows
        rows, bad = [], None
        continue
      if conllu and line.startswith("#"):
        continue
      if not rows and bad is None:
        start = number
      fields = line.split(separator) if separator != " " else line.split()
      if conllu:
        if len(fields) != 10:
          bad = bad or BadExampleError(f"{path}:{number}: expected 10 tab-separated CoNLL-U columns, got "
                                       f"{len(fields)} in {line!r}")
          rows.append(fields)
          continue
        if "-" in fields[0] or "." in fields[0]:  # a multi-word token's range, an empty node
          continue
        fields = [fields[i] for i in _CONLLU_FIELDS]
      if len(fields) != num_columns and bad is None:
        bad = BadExampleError(f"{path}:{number}: expected {num_columns} columns separated by {separator!r}, "
                              f"got {len(fields)} in {line!r}")
      rows.append(fields)
  if rows or bad:
    yield start, bad or rows


def _tag_names(paths: Sequence[Path], columns: Sequence[str], separator: str,
               conllu: bool = False) -> dict[str, list[str]]:
  from tensorflow_datasets.core.dataset_builders.conll import conll_dataset_builder_utils as conll_lib

  if tuple(columns) == CONLL2003_COLUMNS:  # TFDS's conll2003 ids
    return {name: list(feature.feature.names) for name, feature in conll_lib.CONLL_2003_CONFIG.ordered_features.items()
            if name != "tokens"}
  seen: dict[str, set[str]] = {c: set() for c in columns[1:]}
  for path in paths:
    for _, sentence in read_conll_sentences(path, len(columns), separator, conllu):
      if isinstance(sentence, BadExampleError):
        continue
      for fields in sentence:
        for c, v in zip(columns[1:], fields[1:]):
          seen[c].add(v)
  names = {c: sorted(v) for c, v in seen.items()}
  if conllu and "upos" in names:  # UD's 17 tags first, in one order for every treebank (cross-lingual transfer)
    names["upos"] = list(UPOS_TAGS) + sorted(seen["upos"] - set(UPOS_TAGS))
  return names


def _conll_builder_cls():
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.dataset_builders.conll import conll_dataset_builder as conll_builder

  class ConllFileExamples(LocalFiles, conll_builder.ConllDatasetBuilder, skip_registration=True):
    """Local CoNLL files -> TFDS array_record of {"tokens": [text], <tag>: [class label]}."""

    VERSION = tfds.core.Version("1.0.0")
    bad_examples = "sentences"
    empty_split = "no sentence in {path} (expected at least one)"

    def __init__(self, *, split_paths: Mapping[str, str], columns: Sequence[str], separator: str,
                 on_bad_example: str = "error", conllu: bool = False, **kwargs):
      if not columns or columns[0] != "tokens" or len(set(columns)) != len(columns):
        raise ValueError(f"data.conll_columns: expected distinct names starting with 'tokens', got {list(columns)}")
      self._local_files(split_paths, on_bad_example)
      self._columns, self._separator, self._conllu = tuple(columns), separator, conllu
      self._names = _tag_names(list(self._split_paths.values()), self._columns, separator, conllu)
      features = collections.OrderedDict(
          [("tokens", tfds.features.Sequence(tfds.features.Text()))]
          + [(c, tfds.features.Sequence(tfds.features.ClassLabel(names=self._names[c]))) for c in self._columns[1:]])
      config = conll_builder.ConllBuilderConfig(
          name=self.cache_name(f"|{self._columns}|{separator!r}|conllu={conllu}|bad={on_bad_example}|"
                               f"{json.dumps(self._names)}"),
          separator=separator, ordered_features=features)
      super().__init__(config=config, **kwargs)

    def _info(self):
      # file order kept (sentences of a document stay in order, as in the text builder)
      return self.dataset_info_from_configs(features=self.builder_config.features_dict, disable_shuffling=True)

    def _read_split(self, split, path):
      for start, sentence in read_conll_sentences(path, len(self._columns), self._separator, self._conllu):
        yield f"{start:09d}", (sentence if isinstance(sentence, BadExampleError)
                               else {c: [fields[i] for fields in sentence] for i, c in enumerate(self._columns)})

  return ConllFileExamples


def conll_file_sources(split_paths: Mapping[str, str], data_dir: str | None = None, *,
                       columns: Sequence[str] = CONLL2003_COLUMNS, separator: str = " ",
                       on_bad_example: str = "error", conllu: bool = False) -> dict[str, Any]:
  """Prepares (once, cached under `data_dir`) and opens local CoNLL files, one per split (with
  `conllu`, CoNLL-U files: `columns` and `separator` are then CONLLU_COLUMNS and a tab).

  Returns split name -> a grain-compatible TFDS data source of {"tokens": [bytes], <tag>: [int]}
  with `skipped_examples` (sentences left out under on_bad_example='skip', with why) and
  `tag_names` ({column: [name of id 0, 1, ...]}).
  """
  if conllu:
    columns, separator = CONLLU_COLUMNS, "\t"
  builder = make_local_builder(_conll_builder_cls(), split_paths, data_dir, expected="an existing CoNLL file",
                               columns=columns, separator=separator, on_bad_example=on_bad_example, conllu=conllu)
  sources = prepared_sources(builder, split_paths, what="sentence", where_sep=":")
  for source in sources.values():
    source.tag_names = {c: list(n) for c, n in builder._names.items()}
  return sources
