"""Local text data: plain text files and TSV files -> a TFDS builder -> array_record, read with grain.

Two layouts (`data.text_format`):
  lines  one example per line (tinyshakespeare, WikiText): blank lines
         separate paragraphs and are not examples; labels are -1.
  tsv    a header line, then one example per row with a text column and an
         optional integer label column (GLUE's SST-2: `label<TAB>sentence`).
         Sentence pairs (NLI: GLUE RTE, SICK) name their second text column
         (`data.pair_column`); labels written as names (SICK's "NEUTRAL")
         are mapped to their index in `data.label_names`. A row whose text
         is empty, whose column count differs from the header's, or whose
         label is not an integer (or not one of the names) is a bad example:
         an error naming the file and line, or (data.on_bad_example='skip')
         left out and counted.

Records: {"text": bytes (UTF-8), "label": int} (+ "text_b" for pairs), in file order.
Tokenization happens later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from sslax.data.builders import BadExampleError, LocalFiles, make_local_builder, prepared_sources


def read_text_examples(path: Path, fmt: str, text_column: str | None, label_column: str | None,
                       pair_column: str | None = None, label_names: tuple[str, ...] | None = None
                       ) -> Iterator[tuple[int, str | tuple[str, str] | BadExampleError, int]]:
  """Yields (line number, text (a (first, second) tuple with `pair_column`) or a BadExampleError
  naming path:line, label) for each example."""
  with open(path, encoding="utf-8", errors="strict") as f:
    if fmt == "lines":
      for number, line in enumerate(f, start=1):
        text = line.rstrip("\n")
        if text.strip():
          yield number, text, -1
      return
    header = f.readline().rstrip("\n").split("\t")
    if text_column is None:  # the one column that is not the label (SST-2's files name it differently)
      others = [c for c in header if c not in (label_column, pair_column)]
      if len(others) != 1:
        raise ValueError(f"data.text_column: expected it set, as {path} has columns {header}, got None")
      text_column = others[0]
    if text_column not in header:
      raise ValueError(f"data.text_column: expected one of the columns {header} of {path}, got {text_column!r}")
    if label_column and label_column not in header:
      raise ValueError(f"data.label_column: expected one of the columns {header} of {path}, got {label_column!r}")
    if pair_column and pair_column not in header:
      raise ValueError(f"data.pair_column: expected one of the columns {header} of {path}, got {pair_column!r}")
    ti = header.index(text_column)
    pi = header.index(pair_column) if pair_column else None
    li = header.index(label_column) if label_column else None
    names = {name: i for i, name in enumerate(label_names or ())}
    for number, line in enumerate(f, start=2):
      fields = line.rstrip("\n").split("\t")
      where = f"{path}:{number}"
      if len(fields) != len(header):
        yield number, BadExampleError(f"{where}: expected {len(header)} tab-separated columns {header}, "
                                      f"got {len(fields)}"), -1
        continue
      empty = [c for c, i in ((text_column, ti), (pair_column, pi)) if i is not None and not fields[i].strip()]
      if empty:
        yield number, BadExampleError(f"{where}: empty text in column {empty[0]!r}"), -1
        continue
      label = -1
      if li is not None:
        if names:
          if fields[li] not in names:
            yield number, BadExampleError(f"{where}: expected one of data.label_names {list(names)} in column "
                                          f"{label_column!r}, got {fields[li]!r}"), -1
            continue
          label = names[fields[li]]
        else:
          try:
            label = int(fields[li])
          except ValueError:
            yield number, BadExampleError(f"{where}: expected an integer in column {label_column!r}, "
                                          f"got {fields[li]!r}"), -1
            continue
      yield number, (fields[ti], fields[pi]) if pi is not None else fields[ti], label


def _text_builder_cls():
  import numpy as np
  import tensorflow_datasets as tfds

  class TextFileExamples(LocalFiles, tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Local text / TSV files -> TFDS array_record of {"text", "label"}."""

    VERSION = tfds.core.Version("1.0.0")
    bad_examples = "rows"
    empty_split = "no usable text in {path} (expected at least one example)"

    def __init__(self, *, split_paths: Mapping[str, str], fmt: str, text_column: str | None, label_column: str | None,
                 on_bad_example: str = "error", pair_column: str | None = None,
                 label_names: tuple[str, ...] | None = None, **kwargs):
      if fmt not in ("lines", "tsv"):
        raise ValueError(f"data.text_format: expected 'lines', 'tsv', 'conll' or 'conllu', got {fmt!r}")
      if pair_column and fmt != "tsv":
        raise ValueError(f"data.pair_column: expected data.text_format 'tsv' for sentence pairs, got {fmt!r}")
      self._local_files(split_paths, on_bad_example)
      self._fmt, self._text_column, self._label_column = fmt, text_column, label_column
      self._pair_column, self._label_names = pair_column, tuple(label_names) if label_names else None
      extra = (f"|pair={pair_column}" if pair_column else "") + (f"|names={self._label_names}" if label_names else "")
      name = self.cache_name(f"|{fmt}|{text_column}|{label_column}|bad={on_bad_example}{extra}")
      super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

    def _info(self):
      features = {"text": tfds.features.Text(), "label": tfds.features.Scalar(dtype=np.int64)}
      if self._pair_column:
        features["text_b"] = tfds.features.Text()
      # file order kept: a language-model corpus is read as one continuous stream
      return tfds.core.DatasetInfo(builder=self, disable_shuffling=True,
                                   features=tfds.features.FeaturesDict(features))

    def _read_split(self, split, path):
      for number, text, label in read_text_examples(path, self._fmt, self._text_column, self._label_column,
                                                    self._pair_column, self._label_names):
        if isinstance(text, BadExampleError):
          yield f"{number:09d}", text
        elif isinstance(text, tuple):
          yield f"{number:09d}", {"text": text[0], "text_b": text[1], "label": label}
        else:
          yield f"{number:09d}", {"text": text, "label": label}

  return TextFileExamples


def text_file_sources(split_paths: Mapping[str, str], data_dir: str | None = None, *, fmt: str = "lines",
                      text_column: str | None = None, label_column: str | None = "label",
                      on_bad_example: str = "error", pair_column: str | None = None,
                      label_names: tuple[str, ...] | None = None) -> dict[str, Any]:
  """Prepares (once, cached under `data_dir`) and opens local text or TSV files, one per split.

  `text_column` None takes the one TSV column that is not `label_column` (or `pair_column`, the
  second sentence of a pair, read into "text_b"); `label_names` maps named labels to their index.

  Returns split name -> a grain-compatible TFDS data source of {"text": bytes, "label": int}; each
  has `skipped_examples`, the rows left out under on_bad_example='skip' (with why).
  """
  builder = make_local_builder(_text_builder_cls(), split_paths, data_dir, expected="an existing text file",
                               fmt=fmt, text_column=text_column, label_column=label_column if fmt == "tsv" else None,
                               on_bad_example=on_bad_example, pair_column=pair_column,
                               label_names=tuple(label_names) if label_names else None)
  return prepared_sources(builder, split_paths, what="row", where_sep=":")
