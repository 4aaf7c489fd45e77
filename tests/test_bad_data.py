"""Bad image files fail before anything compiles with an error naming the file, or are skipped and
counted (data.on_bad_example='skip'); other modes are converted; empty data is an error."""
import os

import numpy as np
import pytest

from helpers import bad_image_files, png_bytes
from sslax.data import get_source, image_folder_sources
from sslax.data.sources import BadExampleError
from sslax.config import base_config


def _folder(root, extra=None, per_class=3):
  for cls in ("cat", "dog", "frog"):
    os.makedirs(root / cls, exist_ok=True)
    for i in range(per_class):
      (root / cls / f"{i}.png").write_bytes(png_bytes(np.full((16, 16, 3), 40 * i, np.uint8)))
  for name, data in (extra or {}).items():
    (root / name).write_bytes(data)
  return str(root)


@pytest.mark.parametrize("name", list(bad_image_files()))
def test_a_bad_file_is_named_in_the_error(tmp_path, name):
  folder = _folder(tmp_path / "train", {name: bad_image_files()[name]})
  with pytest.raises(BadExampleError, match=f"{folder}/{name}: .*data.on_bad_example='skip'"):
    image_folder_sources({"train": folder}, data_dir=str(tmp_path / "tfds"))


def test_bad_files_are_skipped_and_counted(tmp_path):
  folder = _folder(tmp_path / "train", bad_image_files())
  source = image_folder_sources({"train": folder}, data_dir=str(tmp_path / "tfds"), on_bad_example="skip")["train"]
  assert len(source) == 9 and len(source.skipped_examples) == 3
  assert all(np.asarray(source[i]["image"]).shape == (16, 16, 3) for i in range(len(source)))
  again = image_folder_sources({"train": folder}, data_dir=str(tmp_path / "tfds"), on_bad_example="skip")["train"]
  assert again.skipped_examples == source.skipped_examples  # remembered with the prepared data


def test_other_sizes_are_fine_when_images_are_resized(tmp_path):
  folder = _folder(tmp_path / "train", {"frog/wrong_size.png": bad_image_files()["frog/wrong_size.png"]})
  source = image_folder_sources({"train": folder}, data_dir=str(tmp_path / "tfds"), resize=True)["train"]
  assert len(source) == 10


def test_other_modes_are_converted_to_the_dataset_channels(tmp_path):
  extra = {"cat/gray.png": png_bytes(np.zeros((16, 16), np.uint8)),
           "dog/rgba.png": png_bytes(np.zeros((16, 16, 4), np.uint8))}
  folder = _folder(tmp_path / "train", extra)
  source = image_folder_sources({"train": folder}, data_dir=str(tmp_path / "tfds"))["train"]
  assert len(source) == 11 and {np.asarray(source[i]["image"]).shape for i in range(11)} == {(16, 16, 3)}


def test_no_readable_image_is_an_error(tmp_path):
  folder = tmp_path / "train"
  os.makedirs(folder / "cat")
  (folder / "cat" / "x.png").write_bytes(b"not an image")
  with pytest.raises(ValueError, match="no readable"):
    image_folder_sources({"train": str(folder)}, data_dir=str(tmp_path / "tfds"))


def test_an_empty_split_is_an_error_naming_it(tmp_path):
  train = _folder(tmp_path / "train")
  empty = tmp_path / "test"
  for cls in ("cat", "dog", "frog"):
    os.makedirs(empty / cls)
  config = base_config()
  config.data.source = "image_folder"
  config.data.paths = {"train": train, "test": str(empty)}
  config.data.data_dir = str(tmp_path / "tfds")
  with pytest.raises(ValueError, match="data.paths.test: split 'test' is empty"):
    get_source(config.data, "test")


def _tsv(path, rows, header="label\tcontent"):
  path.write_text("\n".join([header, *rows]) + "\n")
  return str(path)


def test_empty_and_malformed_text_rows_are_named_or_skipped_and_counted(tmp_path):
  from sslax.data import text_file_sources

  rows = ["1\ta fine film .", "0\t", "1\tgood", "x\tnot a label", "0\ttoo\tmany", "0\t   "]
  path = _tsv(tmp_path / "train.tsv", rows)
  with pytest.raises(BadExampleError, match=f"{path}:3: empty text in column 'content'.*on_bad_example='skip'"):
    text_file_sources({"train": path}, data_dir=str(tmp_path / "tfds"), fmt="tsv")
  source = text_file_sources({"train": path}, data_dir=str(tmp_path / "tfds2"), fmt="tsv",
                             on_bad_example="skip")["train"]
  assert len(source) == 2 and [int(source[i]["label"]) for i in range(2)] == [1, 1]
  assert source[0]["text"] == b"a fine film ."
  skipped = "\n".join(source.skipped_examples)
  assert len(source.skipped_examples) == 4
  for line, why in ((3, "empty text"), (5, "expected an integer in column 'label', got 'x'"),
                    (6, "expected 2 tab-separated columns"), (7, "empty text")):
    assert f"{path}:{line}: {why}" in skipped
  with pytest.raises(ValueError, match="data.text_column: expected one of the columns"):
    text_file_sources({"train": path}, data_dir=str(tmp_path / "tfds3"), fmt="tsv", text_column="sentence")


def test_text_lines_blank_lines_separate_and_an_empty_file_is_an_error(tmp_path):
  from sslax.data import text_file_sources

  corpus = tmp_path / "corpus.txt"
  corpus.write_text("First Citizen:\nBefore we proceed.\n\n  \nAll:\nSpeak.\n")
  source = text_file_sources({"train": str(corpus)}, data_dir=str(tmp_path / "tfds"))["train"]
  assert [source[i]["text"] for i in range(len(source))] == [b"First Citizen:", b"Before we proceed.", b"All:",
                                                              b"Speak."]
  empty = tmp_path / "empty.txt"
  empty.write_text("\n\n")
  with pytest.raises(ValueError, match="data.paths.train: split 'train' is empty"):
    text_file_sources({"train": str(empty)}, data_dir=str(tmp_path / "tfds2"))
