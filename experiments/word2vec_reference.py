"""gensim's word2vec (a reimplementation of word2vec.c's per-pair SGD) on exactly the words sslax
trains on, as the reference figure for `experiments/word2vec_text.py`. Three steps, as gensim
needs an older NumPy than sslax's environment (so it runs in its own):

  python experiments/word2vec_reference.py dump      # sslax: the training rows as sentences of words
  python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip install gensim
  /tmp/gvenv/bin/python experiments/word2vec_reference.py train [--cbow]   # gensim: vectors
  python experiments/word2vec_reference.py score [--cbow]   # sslax: the same analogy / similarity sets

`dump` writes `runs/word2vec/sentences.txt`: each training row's words split at `</s>`,
`<unk>` and padding left out (word2vec.c drops unknown words); `train` runs gensim with the
`cpu` recipe's settings (100 dimensions, window 5, 5 negatives, sample 1e-3, min_count 1 on
words that already passed the tokenizer's min_count 5, 5 epochs, alpha 0.025 skip-gram / 0.05
CBOW decaying linearly to 1e-4); `score` prints and writes the figures as `report.json` does.
"""
import argparse
import json
import os

SENTENCES = "runs/word2vec/sentences.txt"
CONFIG = "experiments/word2vec_text.py:cpu"


def dump():
  import numpy as np

  from sslax.config import load_config
  from sslax.data import get_source
  from sslax.data.tokenize import data_tokenizer

  c = load_config(CONFIG)
  source = get_source(c.data, c.data.train_split)
  tok = data_tokenizer(c.data)
  words = {i: w for w, i in tok.get_vocab().items()}
  eos, skip = int(c.data.special_ids.eos), {int(v) for v in c.data.special_ids.values()}
  n = 0
  with open(SENTENCES, "w", encoding="utf-8") as f:
    for i in range(len(source)):
      sentence = []
      for t in np.asarray(source[i]["ids"]).tolist():
        if t == eos and sentence:
          f.write(" ".join(sentence) + "\n")
          n, sentence = n + 1, []
        elif t not in skip:
          sentence.append(words[t])
      if sentence:
        f.write(" ".join(sentence) + "\n")
        n += 1
  print(f"{SENTENCES}: {n} sentences")


def train(cbow: bool):
  from gensim.models import Word2Vec

  with open(SENTENCES, encoding="utf-8") as f:
    sentences = [line.split() for line in f]
  model = Word2Vec(sentences, vector_size=100, window=5, negative=5, sample=1e-3, min_count=1, epochs=5,
                   sg=0 if cbow else 1, alpha=0.05 if cbow else 0.025, min_alpha=(0.05 if cbow else 0.025) * 1e-4,
                   workers=2, seed=0)
  out = f"runs/word2vec/gensim_{'cbow' if cbow else 'skipgram'}.txt"
  model.wv.save_word2vec_format(out)
  print(out)


def score(cbow: bool):
  import numpy as np

  from sslax.config import load_config
  from sslax.eval.word_vectors import word_vector_metrics

  name = "cbow" if cbow else "skipgram"
  with open(f"runs/word2vec/gensim_{name}.txt", encoding="utf-8") as f:
    f.readline()
    rows = [line.rstrip("\n").split(" ") for line in f]
  # gensim writes the words most frequent first, as the word-level tokenizer numbers them
  words, vectors = [r[0] for r in rows], np.array([[float(x) for x in r[1:]] for r in rows], np.float32)
  report = word_vector_metrics(vectors, words, load_config(CONFIG).eval.word_eval)
  print(json.dumps(report, indent=2))
  with open(f"runs/word2vec/gensim_{name}.json", "w") as f:
    json.dump(report, f, indent=2)


if __name__ == "__main__":
  parser = argparse.ArgumentParser()
  parser.add_argument("step", choices=("dump", "train", "score"))
  parser.add_argument("--cbow", action="store_true")
  args = parser.parse_args()
  os.makedirs("runs/word2vec", exist_ok=True)
  {"dump": dump, "train": lambda: train(args.cbow), "score": lambda: score(args.cbow)}[args.step]()
