"""Token classification: CoNLL files through their TFDS builder, tags on each word's first
sub-word, conlleval's entity F1, and `sslax finetune` of a tagger on a pretrained BERT."""
import json

import numpy as np
import pytest

from helpers import text_smoke_config, write_conll_corpus
from sslax.data.conll import conll_file_sources
from sslax.data.packing import tag_rows
from sslax.data.sources import BadExampleError
from sslax.eval.finetune import entity_f1, iob_entities

IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4, "eos": 9}


def test_tags_go_to_each_words_first_token_and_nowhere_else():
  # sentence 1: words 0, 1, 2 with word 1 split in three tokens; sentence 2: cut by seq_len
  rows = tag_rows([np.array([10, 11, 12, 13, 14]), np.array([20, 21, 22, 23, 24, 25])],
                  [[0, 1, 1, 1, 2], [0, 1, 2, 3, 4, 5]], [np.array([5, 6, 7]), np.array([1, 2, 3, 4, 5, 6])],
                  seq_len=8, framing="cls_sep", special_ids=IDS)
  np.testing.assert_array_equal(rows["ids"], [[2, 10, 11, 12, 13, 14, 3, 0], [2, 20, 21, 22, 23, 24, 25, 3]])
  np.testing.assert_array_equal(rows["tags"], [[-1, 5, 6, -1, -1, 7, -1, -1], [-1, 1, 2, 3, 4, 5, 6, -1]])
  np.testing.assert_array_equal(rows["segments"], [[1, 1, 1, 1, 1, 1, 1, 0], [1] * 8])
  cut = tag_rows([np.arange(10, 20)], [list(range(10))], [np.arange(10)], seq_len=6, framing="eos",
                 special_ids=IDS)
  np.testing.assert_array_equal(cut["ids"], [[10, 11, 12, 13, 14, 9]])
  np.testing.assert_array_equal(cut["tags"], [[0, 1, 2, 3, 4, -1]])  # words 5-9 cut: their tags lost


def test_iob_entities_read_iob1_and_iob2_as_conlleval():
  assert iob_entities(["B-PER", "I-PER", "O", "B-LOC"]) == {(0, 2, "PER"), (3, 4, "LOC")}
  assert iob_entities(["I-PER", "I-PER", "I-LOC", "O", "I-ORG"]) == {(0, 2, "PER"), (2, 3, "LOC"), (4, 5, "ORG")}
  assert iob_entities(["B-PER", "B-PER", "I-LOC"]) == {(0, 1, "PER"), (1, 2, "PER"), (2, 3, "LOC")}
  assert iob_entities(["O", "O"]) == set()
  true = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "B-ORG"]]
  pred = [["B-PER", "O", "O"], ["B-LOC", "O", "B-ORG"]]  # 2 of 3 right, 3 predicted
  assert entity_f1(true, pred) == pytest.approx(2 * 2 / (3 + 3))
  assert entity_f1(true, true) == 1.0


def test_conll_files_read_as_tfds_conll2003_records(tmp_path):
  path = tmp_path / "train.txt"
  path.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
                  "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n\n")
  src = conll_file_sources({"train": str(path)}, str(tmp_path / "data"))["train"]
  assert len(src) == 2  # the trailing blank lines make no empty sentence
  names = src.tag_names["ner"]
  first = src[0]
  assert [w.decode() for w in first["tokens"]] == ["EU", "rejects", "German"]
  assert [names[i] for i in first["ner"]] == ["B-ORG", "O", "B-MISC"]
  assert names[:3] == ["O", "B-PER", "I-PER"]  # TFDS conll2003's ids


def test_conllu_reads_the_syntactic_words_and_their_upos(tmp_path):
  """Universal Dependencies' CoNLL-U: comments, a multi-word token range (its parts are the
  words) and an empty node are handled as UD defines them; a short line is named."""
  row = "{}\t{}\t_\t{}\t{}\t_\t0\troot\t_\t_"
  path = tmp_path / "en-ud-train.conllu"
  path.write_text("# sent_id = 1\n# text = I can't go\n" + "\n".join([
      row.format(1, "I", "PRON", "PRP"), "2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_", row.format(2, "ca", "AUX", "MD"),
      row.format(3, "n't", "PART", "RB"), row.format(4, "go", "VERB", "VB"),
      "4.1\tgone\t_\tVERB\t_\t_\t_\t_\t_\t_"])
      + "\n\n# sent_id = 2\n" + row.format(1, "Hi", "INTJ", "UH") + "\n\n")
  src = conll_file_sources({"train": str(path)}, str(tmp_path / "data"), conllu=True)["train"]
  assert len(src) == 2
  first, names = src[0], src.tag_names["upos"]
  assert [w.decode() for w in first["tokens"]] == ["I", "ca", "n't", "go"]
  assert [names[i] for i in first["upos"]] == ["PRON", "AUX", "PART", "VERB"]
  assert [src.tag_names["xpos"][i] for i in src[1]["xpos"]] == ["UH"]
  bad = tmp_path / "bad.conllu"
  bad.write_text(row.format(1, "a", "X", "X") + "\n2\tb\tX\n\n")
  with pytest.raises(BadExampleError, match=r"bad.conllu:2: expected 10 tab-separated CoNLL-U columns, got 3"):
    conll_file_sources({"train": str(bad)}, str(tmp_path / "d"), conllu=True)


def test_a_bad_conll_line_names_file_and_line_or_is_skipped(tmp_path):
  path = tmp_path / "bad.conll"
  path.write_text("a\tO\nb\tO\n\nc\tO\td\n\ne\tB-X\n")
  with pytest.raises(BadExampleError, match=r"bad.conll:4: expected 2 columns"):
    conll_file_sources({"train": str(path)}, str(tmp_path / "d1"), columns=("tokens", "ner"), separator="\t")
  src = conll_file_sources({"train": str(path)}, str(tmp_path / "d2"), columns=("tokens", "ner"), separator="\t",
                           on_bad_example="skip")["train"]
  assert len(src) == 2 and len(src.skipped_examples) == 1
  assert src.tag_names["ner"] == ["B-X", "O"]
  with pytest.raises(ValueError, match="data.conll_columns: expected distinct names starting with 'tokens'"):
    conll_file_sources({"train": str(path)}, str(tmp_path / "d3"), columns=("word", "ner"), separator="\t")


@pytest.fixture(scope="module")
def tagged_run(tmp_path_factory):
  from sslax.train.loop import train

  root = tmp_path_factory.mktemp("tagging")
  config = text_smoke_config("bert", root / "corpus", root / "data", **{"train.num_steps": 2, "eval.linear_probe": False})
  workdir = root / "run"
  train(config, str(workdir), progress=False)
  return root, workdir


def _tagging_config(tmp_path, root, workdir, **finetune):
  conll = write_conll_corpus(str(root / "corpus"))
  probe = {"source": "text_files", "paths": {"train": conll, "test": conll}, "train_split": "train",
           "eval_split": "test", "text_format": "conll", "conll_columns": ["tokens", "ner"],
           "conll_separator": "\t", "text_key": "tokens", "tag_key": "ner", "packing": "none",
           "on_bad_example": "error"}
  settings = {"label": "tags", "group_by": [], "per_group": 0, "steps": 200, "lr": 1e-2, "batch_size": 16,
              **finetune}
  cfg = tmp_path / "tagging.py"
  cfg.write_text(
      "import json, ml_collections\n"
      "def get_config(arg=None):\n"
      f"  c = json.load(open({str(workdir / 'config.json')!r}))\n"
      f"  c['eval']['probe_data'] = {probe!r}\n"
      f"  c['finetune'].update({settings!r})\n"
      "  return ml_collections.ConfigDict(c)\n")
  return str(cfg)


def test_finetune_tags_words_from_the_cli(tmp_path, tagged_run):
  from sslax.cli import main

  root, workdir = tagged_run
  cfg = _tagging_config(tmp_path, root, workdir)
  out = tmp_path / "report.json"
  assert main(["finetune", "--config", cfg, "--workdir", str(workdir), "--output", str(out)]) == 0
  report = json.load(open(out))
  # the tag is the word's class; majority (O) is ~0.7 of the words
  assert report["top1"] > 0.95 and report["entity_f1"] > 0.9, report
  assert report["num_tagged_tokens"] > 1000


def test_token_labels_with_per_group_fail_before_training(tmp_path, tagged_run, capsys):
  from sslax.cli import main

  root, workdir = tagged_run
  cfg = _tagging_config(tmp_path, root, workdir, per_group=10)
  assert main(["finetune", "--config", cfg, "--workdir", str(workdir)]) != 0
  assert "finetune.per_group: expected 0 (every sentence) for token labels 'tags', got 10" in capsys.readouterr().err
