"""Settings shared by the language configs (`bert_text.py`, `gpt_text.py`)."""
import ml_collections

from sslax.config import base_config, pretrained_fields

TEXT = "../shared/data/text"
SHAKESPEARE = f"{TEXT}/tinyshakespeare.txt"
WIKITEXT2_VALID = f"{TEXT}/wikitext2_valid.txt"
SST2_TRAIN, SST2_DEV = f"{TEXT}/sst2/train.tsv", f"{TEXT}/sst2/dev.tsv"
UD_EWT = f"{TEXT}/ud_en_ewt"
NLI = f"{TEXT}/nli"
SNLI_TSV = "runs/nli/snli_{split}.tsv"  # written by experiments/nli_data.py from SNLI's parallel files

# our trained tokenizers put their specials first (sslax.data.tokenize); a loaded vocabulary
# (e.g. Hugging Face's bert-base-uncased vocab.txt: pad 0, unk 100, cls 101, sep 102, mask 103)
# sets its own ids here, and they are checked against the tokenizer
WORDPIECE_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
BPE_IDS = {"eos": 0, "pad": 1}


def text_config(method: dict, model: dict, data: dict) -> ml_collections.ConfigDict:
  """base_config without the image sections, with a token `data` section, a Transformer `model`
  and AdamW with linear warm-up and cosine decay."""
  c = base_config()
  for image_only in ("augment", "augment_view2", "projector"):
    del c[image_only]
  c.method = ml_collections.ConfigDict(method)
  # model.hf_weights: a local Hugging Face BERT directory to start from (BERT only; model.init_from
  # reads the same directories, and GPT-2 ones)
  # model.attention_impl / attention_block: the attention kernel (sslax.models.attention; 'auto':
  # causal attention by query blocks of 64 on the CPU, XLA's fused attention elsewhere)
  c.model = ml_collections.ConfigDict({"dropout": 0.1, "adapter_dim": 0, "attention_impl": "auto", "attention_block": 64,
                                       "hf_weights": ml_collections.FieldReference(None, field_type=str),
                                       **pretrained_fields(), **model})
  c.data = ml_collections.ConfigDict({
      "source": "text_files", "name": "", "paths": {}, "train_split": "train", "eval_split": "test",
      "data_dir": ml_collections.FieldReference(None, field_type=str), "text_format": "lines",
      "text_column": ml_collections.FieldReference(None, field_type=str), "label_column": "label",
      "text_key": "text", "split_range": {}, "on_bad_example": "error", **data})
  c.optim.name, c.optim.scale_lr_with_batch, c.optim.schedule = "adamw", False, "cosine"
  c.optim.b1, c.optim.b2, c.optim.eps, c.optim.weight_decay, c.optim.grad_clip_norm = 0.9, 0.999, 1e-8, 0.01, 1.0
  c.monitor.collapse_std_ratio, c.monitor.collapse_rank = 0.0, 0.0  # pooled token states: logged, no alarm
  c.eval.pooling = "mean"
  c.eval.max_train = 0
  return c


def sst2_probe(packing: str = "none") -> ml_collections.ConfigDict:
  """SST-2 with labels, one sentence per row, for probes, fine-tuning and few-shot scoring; the
  tokenizer, special ids, framing and row length come from the pretraining data."""
  return ml_collections.ConfigDict({
      "source": "text_files", "paths": {"train": SST2_TRAIN, "test": SST2_DEV}, "train_split": "train",
      "eval_split": "test", "text_format": "tsv", "label_column": "label", "text_key": "text",
      "packing": packing, "on_bad_example": "error"})


def conll2003_probe(source: str = "tfds") -> ml_collections.ConfigDict:
  """CoNLL-2003 named entities (Tjong Kim Sang & De Meulder 2003) for `sslax finetune` as token
  classification: TFDS `conll2003` by name (it downloads), or with source='text_files' the
  shared task's own files (`word POS chunk NER` per line), given as eval.probe_data.paths.train /
  .dev. Tags on each word's first token, entity F1 as conlleval; the tokenizer, special ids,
  framing and row length come from the pretraining data."""
  return ml_collections.ConfigDict({
      "source": source, "name": "conll2003", "paths": {"train": "", "dev": ""}, "train_split": "train",
      "eval_split": "dev", "text_format": "conll", "conll_columns": ["tokens", "pos", "chunks", "ner"],
      "conll_separator": " ", "text_key": "tokens", "tag_key": "ner", "packing": "none",
      "on_bad_example": "error"})


def ud_probe(treebank: str = UD_EWT, prefix: str = "en_ewt", tag: str = "upos") -> ml_collections.ConfigDict:
  """A Universal Dependencies treebank's train and dev CoNLL-U files (default English EWT, Silveira
  et al. 2014) for `sslax finetune` as token classification of `tag` ('upos': the 17 universal
  part-of-speech tags, or 'xpos'); the tokenizer, special ids, framing and row length come from the
  pretraining data."""
  return ml_collections.ConfigDict({
      "source": "text_files", "paths": {"train": f"{treebank}/{prefix}-ud-train.conllu",
                                        "dev": f"{treebank}/{prefix}-ud-dev.conllu"},
      "train_split": "train", "eval_split": "dev", "text_format": "conllu", "text_key": "tokens",
      "tag_key": tag, "packing": "none", "on_bad_example": "error"})


NLI_TASKS = ("snli", "rte", "sick")


def nli_probe(task: str) -> ml_collections.ConfigDict:
  """Sentence-pair classification data for `sslax finetune` (premise -> text, hypothesis -> the
  pair): SNLI 1.0 trained on dev (9,842 pairs) and scored on test (9,824), as TSV files written by
  `experiments/nli_data.py`; GLUE RTE train (2,490) -> dev (277), labels 0 entailment / 1 not;
  SICK 2014 train (4,500) -> test (4,927), its entailment judgements. The tokenizer, special ids
  and framing come from the pretraining data."""
  if task not in NLI_TASKS:
    raise ValueError(f"NLI task: expected one of {list(NLI_TASKS)}, got {task!r}")
  labels3 = ("entailment", "neutral", "contradiction")
  files = {"snli": ({"train": SNLI_TSV.format(split="dev"), "test": SNLI_TSV.format(split="test")},
                    "sentence1", "sentence2", "label", labels3),
           "rte": ({"train": f"{NLI}/rte/train.tsv", "test": f"{NLI}/rte/dev.tsv"}, "sentence1", "sentence2", "label",
                   None),
           "sick": ({"train": f"{NLI}/sick/SICK_train.txt", "test": f"{NLI}/sick/SICK_test_annotated.txt"},
                    "sentence_A", "sentence_B", "entailment_judgment", tuple(x.upper() for x in labels3))}
  paths, text, pair, label, names = files[task]
  return ml_collections.ConfigDict({
      "source": "text_files", "paths": paths, "train_split": "train", "eval_split": "test", "text_format": "tsv",
      "text_column": text, "pair_column": pair, "label_column": label,
      "label_names": ml_collections.FieldReference(names, field_type=tuple), "text_key": "text", "packing": "none",
      "on_bad_example": "error"})
