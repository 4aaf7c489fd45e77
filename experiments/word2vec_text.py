"""word2vec (Mikolov et al. 2013) on every English text in ../shared/data/text.

Variants (the `arg` of `get_config`):
  smoke  a generated text file (the tests): 16-dim vectors, 3 steps.
  cpu    skip-gram on `runs/word2vec/corpus.tsv` (written by `experiments/word2vec_corpus.py`:
         2.2M words, a row per sentence or paragraph); word2vec.c's defaults for the
         rest: 100 dimensions, window 5, 5 negatives, subsampling t = 1e-3, min_count 5, 5 epochs
         with the learning rate decaying linearly to 1e-4 of its start; rows of 256 words, batch 32.
         Adam (lr 0.03) on the summed loss of the batch's pairs in place of word2vec.c's per-pair
         SGD (see `sslax.methods.word2vec`; the learning rate was picked by 300-step runs, RESULTS.md).
  cbow   the same with CBOW.
  full   the paper-scale run: 300 dimensions, window 5, subsampling 1e-5 (Mikolov et al. 2013b for
         large corpora), a vocabulary of the 1M most frequent words (min_count 5) of TFDS
         `wikipedia/20230601.en` by name, batch 1,024 rows of 256 words, both tables split over
         the mesh (FSDP rules).

The vectors are scored on word2vec's analogy questions and on WS-353, SimLex-999 and MEN
(`sslax.eval.word_vectors`).
"""
import ml_collections

from text_common import TEXT, text_config

VARIANTS = ("cpu", "cbow", "full", "smoke")
CORPUS = "runs/word2vec/corpus.tsv"
WORD_IDS = {"pad": 0, "unk": 1, "eos": 2}  # sslax.data.tokenize.WORD_SPECIALS
WORD_EVAL = {"analogy": f"{TEXT}/word_eval/analogy/questions-words.txt", "analogy_vocab": 30000,
             "similarity": {"ws353": f"{TEXT}/word_eval/word-sim/EN-WS-353-ALL.txt",
                            "simlex999": f"{TEXT}/word_eval/word-sim/EN-SIMLEX-999.txt",
                            "men": f"{TEXT}/word_eval/word-sim/EN-MEN-TR-3k.txt"}}
EPOCH_ROWS = 10362  # rows of 256 of the cpu corpus (2,486,420 words and punctuation, a </s> per sentence)


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  method = {"name": "word2vec", "architecture": "cbow" if arg == "cbow" else "skipgram", "window": 5,
            "negatives": 5, "sample": 1e-3}
  data = {"paths": {"train": CORPUS, "test": CORPUS}, "split_range": {"train": (0.0, 1.0), "test": (0.99, 1.0)},
          "text_format": "tsv", "text_column": "text", "label_column": "",
          "tokenizer": "word", "vocab_size": 40000, "min_frequency": 5, "seq_len": 256, "packing": "concat",
          "framing": "eos", "special_ids": dict(WORD_IDS)}
  c = text_config(method, {"name": "word2vec", "vocab_size": 40000, "max_len": 256, "dim": 100}, data)
  c.optim.name, c.optim.schedule, c.optim.lr = "adamw", "linear", 0.03
  c.optim.weight_decay, c.optim.grad_clip_norm, c.optim.warmup_steps = 0.0, 0.0, 0
  c.optim.final_lr_fraction = 1e-4  # word2vec.c: alpha never below starting_alpha * 0.0001
  c.eval.word_eval = ml_collections.ConfigDict(WORD_EVAL)
  c.eval.linear_probe = False
  c.train.batch_size = 32
  c.train.num_steps = 5 * EPOCH_ROWS // 32  # 5 epochs, word2vec.c's -iter 5
  c.train.log_every, c.train.checkpoint_every, c.train.knn_every = 100, 1000, 500
  if arg == "full":
    c.data.source, c.data.name, c.data.paths, c.data.split_range = "tfds", "wikipedia/20230601.en", {}, {}
    c.data.train_split, c.data.eval_split = "train[:99%]", "train[99%:]"
    c.data.vocab_size = c.model.vocab_size = 1_000_000
    c.model.dim, c.method.sample = 300, 1e-5
    c.train.batch_size, c.train.num_steps = 1024, 100_000
    c.train.log_every, c.train.checkpoint_every = 1000, 10_000
    c.sharding.rules = ((".*", "fsdp"),)
  elif arg == "smoke":
    c.data.vocab_size = c.model.vocab_size = 200
    c.data.min_frequency, c.data.seq_len, c.model.max_len, c.model.dim = 1, 32, 32, 16
    c.method.sample = 0.0
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 8, 3, 1, 3
  return c
