"""What BERT's vectors encode: the same word in different contexts (Ethayarajh, EMNLP 2019, "How
contextual are contextualized word representations?"), for a pretrained sslax BERT, the same
encoder at random init and word2vec's one vector per word.

Contexts are WikiText-2 valid sentences (`../shared/data/text/wikitext2_valid.txt`, cut at " . ";
articles at their ` = Title = ` lines). For every word seen at least `--min_count` times in at
least 3 articles (and in word2vec's vocabulary), up to `--per_word` occurrences are drawn; a
word's contextual vector at layer l is the mean of its word pieces' states there. Per layer:

(The 100 most frequent such words, mostly function words, are left out by default.)

- self-similarity: the mean cosine between two occurrences of the same word, over pairs in the
  same article (same topic, mostly the same sense) and pairs from different articles;
- baseline (anisotropy): the mean cosine between occurrences of two different words, drawn at
  random (Ethayarajh's correction: a space where every vector points the same way has high
  self-similarity for free);
- the fraction of a word's occurrences whose nearest other occurrence (cosine, among all the
  sampled occurrences of all the words) is the same word: how much the vector still says which
  word it is.

word2vec's vector is the same in every context: self-similarity 1, nearest occurrence always
the same word. There are no word-sense labels in the shared data, so the same article stands in
for the same sense (a proxy: an article can use a word in two senses).

  python experiments/contextual_vectors.py --bert experiments/spanbert_text.py:cpu \\
    --bert_workdir runs/spanbert/sbo --word2vec experiments/word2vec_text.py:cbow \\
    --word2vec_workdir runs/word2vec/cbow --output runs/contextual/report.json \\
    --plot experiments/figures/contextual_vectors.png
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_json import emit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIKITEXT = os.path.join(ROOT, "..", "shared", "data", "text", "wikitext2_valid.txt")
_TITLE = re.compile(r"^ = [^=].* = $")


def wikitext_sentences(path: str) -> list[tuple[int, list[str]]]:
  """[(article index, words)] of every sentence (a paragraph cut after each " . ")."""
  out, article = [], -1
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.rstrip("\n")
      if _TITLE.match(line):
        article += 1
        continue
      if not line.strip() or line.lstrip().startswith("="):
        continue
      for sentence in re.split(r"(?<= \.) ", line.strip()):
        words = sentence.split()
        if len(words) >= 4:
          out.append((max(article, 0), words))
  return out


def pick_occurrences(sentences, known, *, min_count: int, per_word: int, max_words: int, seed: int,
                     skip_most_frequent: int = 0):
  """{word: [(sentence index, word index)]}: words seen `min_count` times in 3 articles or more
  (alphabetic, lower-case, in `known`), the `max_words` most frequent of them after the
  `skip_most_frequent` most frequent (function words), `per_word` occurrences each drawn at random."""
  where, articles = collections.defaultdict(list), collections.defaultdict(set)
  for s, (article, words) in enumerate(sentences):
    for w, word in enumerate(words):
      if word.isalpha() and word.islower() and word in known:
        where[word].append((s, w))
        articles[word].add(article)
  chosen = [w for w in sorted(where, key=lambda w: -len(where[w])) if len(where[w]) >= min_count and len(articles[w]) >= 3]
  rng = np.random.default_rng(seed)
  out = {}
  for word in chosen[skip_most_frequent: skip_most_frequent + max_words]:
    idx = rng.choice(len(where[word]), size=min(per_word, len(where[word])), replace=False)
    out[word] = [where[word][i] for i in sorted(idx)]
  return out


def similarity_stats(vectors: np.ndarray, words: np.ndarray, articles: np.ndarray, *, seed: int) -> dict:
  """Self-similarity within / across articles, the different-word baseline and the nearest-
  occurrence rate of occurrence vectors [N, D] labelled by word and article ids [N]."""
  v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
  cos = v @ v.T
  same_word = words[:, None] == words[None, :]
  same_article = articles[:, None] == articles[None, :]
  off = ~np.eye(len(v), dtype=bool)
  within, across = [], []
  for word in np.unique(words):
    rows = words == word
    block, art = cos[np.ix_(rows, rows)], same_article[np.ix_(rows, rows)] & off[np.ix_(rows, rows)]
    other = ~same_article[np.ix_(rows, rows)]
    if art.any():
      within.append(block[art].mean())
    if other.any():
      across.append(block[other].mean())
  rng = np.random.default_rng(seed)
  i, j = rng.integers(0, len(v), (2, 20 * len(v)))
  keep = words[i] != words[j]
  nearest = np.where(off, cos, -np.inf).argmax(axis=1)
  return {"self_similarity_same_article": float(np.mean(within)),
          "self_similarity_other_article": float(np.mean(across)),
          "different_word_baseline": float(cos[i[keep], j[keep]].mean()),
          "nearest_is_same_word": float(np.mean(same_word[np.arange(len(v)), nearest])),
          "words_with_same_article_pairs": len(within)}


def bert_occurrence_vectors(config_spec, workdir, sentences, occurrences, *, random_init: bool, batch: int = 128):
  """{layer name: [N, D]} mean word-piece states of each occurrence, and the layer names."""
  import jax
  import jax.numpy as jnp

  from sslax.cli import _restore
  from sslax.config import load_config
  from sslax.models.functional import merge_model

  config = load_config(config_spec)
  _, _, state, _, _ = _restore(types.SimpleNamespace(workdir=workdir, random_init=random_init, step=None), config)
  model = merge_model(state.graphdef, state.params, state.batch_stats)
  tok, length = bert_tokenizer(config_spec)
  s_ids = config.data.special_ids
  rows, spans = [], []  # one row per (sentence) with a sampled occurrence; piece spans per occurrence
  row_of = {}
  for word, occ in occurrences.items():
    for s, w in occ:
      if s not in row_of:
        enc = tok.encode(sentences[s][1], is_pretokenized=True)
        pieces, word_ids = enc.ids[:length - 2], enc.word_ids[:length - 2]
        row_of[s] = (len(rows), word_ids)
        rows.append([s_ids["cls"], *pieces, s_ids["sep"]])
      r, word_ids = row_of[s]
      piece = [k + 1 for k, x in enumerate(word_ids) if x == w]  # +1: [CLS]
      spans.append((r, piece))
  ids = np.full((len(rows), length), s_ids["pad"], np.int32)
  for r, row in enumerate(rows):
    ids[r, :len(row)] = row
  valid = ids != s_ids["pad"]
  valid[:, 0] = True

  @jax.jit
  def layers(ids, valid):
    _, feats = model(ids, valid)
    return {k: v.astype(jnp.float32) for k, v in feats.items() if k.startswith("layer_")}

  states = collections.defaultdict(list)
  for start in range(0, len(ids), batch):
    chunk = slice(start, start + batch)
    n = len(ids[chunk])
    pad = lambda x: np.concatenate([x, np.repeat(x[:1], batch - n, 0)]) if n < batch else x
    out = jax.device_get(layers(pad(ids[chunk]), pad(valid[chunk])))
    for k, v in out.items():
      states[k].append(v[:n])
  names = sorted(states, key=lambda k: int(k.split("_")[1]))
  full = {k: np.concatenate(states[k]) for k in names}
  missing = sum(1 for _, piece in spans if not piece)
  if missing:
    raise ValueError(f"{missing} occurrences lost their word pieces (cut by data.seq_len={length})")
  return {k: np.stack([full[k][r, piece].mean(0) for r, piece in spans]) for k in names}, names


def bert_tokenizer(config_spec):
  """(the BERT run's tokenizer, its row length)."""
  from sslax.config import load_config
  from sslax.data.tokenize import TRAINED, load_tokenizer, tokenizer_cache_path

  d = load_config(config_spec).data
  return load_tokenizer(tokenizer_cache_path(d) if d.tokenizer in TRAINED else d.tokenizer), int(d.seq_len)


def word2vec_table(config_spec, workdir):
  """(word -> id, [V, D] vectors) of a trained word2vec run."""
  from sslax.cli import _restore
  from sslax.config import load_config
  from sslax.data.tokenize import load_tokenizer, tokenizer_cache_path
  from sslax.models.functional import merge_model

  config = load_config(config_spec)
  method, _, state, _, _ = _restore(types.SimpleNamespace(workdir=workdir, random_init=False, step=None), config)
  vectors = np.asarray(method.word_vectors(merge_model(state.graphdef, state.params, state.batch_stats)))
  return load_tokenizer(tokenizer_cache_path(config.data)).get_vocab(), vectors


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--bert", required=True, help="the BERT run's config, e.g. experiments/spanbert_text.py:cpu")
  p.add_argument("--bert_workdir", required=True)
  p.add_argument("--word2vec", required=True, help="the word2vec run's config")
  p.add_argument("--word2vec_workdir", required=True)
  p.add_argument("--text", default=WIKITEXT)
  p.add_argument("--min_count", type=int, default=20)
  p.add_argument("--per_word", type=int, default=20)
  p.add_argument("--max_words", type=int, default=300)
  p.add_argument("--skip_most_frequent", type=int, default=100, help="leave out the function words")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--output", default="runs/contextual/report.json")
  p.add_argument("--plot", default="")
  args = p.parse_args(argv)

  vocab, table = word2vec_table(args.word2vec, args.word2vec_workdir)
  tok, length = bert_tokenizer(args.bert)
  # whole sentences only: no occurrence cut off by the BERT rows
  sentences = [(a, words) for a, words in wikitext_sentences(args.text)
               if len(tok.encode(words, is_pretokenized=True).ids) <= length - 2]
  occurrences = pick_occurrences(sentences, vocab, min_count=args.min_count, per_word=args.per_word,
                                 max_words=args.max_words, seed=args.seed, skip_most_frequent=args.skip_most_frequent)
  flat = [(word, s) for word, occ in occurrences.items() for s, _ in occ]
  index = {w: i for i, w in enumerate(occurrences)}
  word_ids = np.array([index[w] for w, _ in flat])
  article_ids = np.array([sentences[s][0] for _, s in flat])
  stats = lambda v: similarity_stats(v, word_ids, article_ids, seed=args.seed)
  report = {"text": os.path.relpath(args.text, ROOT), "sentences": len(sentences), "words": len(occurrences),
            "occurrences": len(flat), "bert": args.bert, "bert_workdir": args.bert_workdir,
            "word2vec": args.word2vec, "word2vec_workdir": args.word2vec_workdir}
  report["examples"] = list(occurrences)[:20]
  report["word2vec_vectors"] = stats(table[[vocab[w] for w, _ in flat]])
  for name, random_init in (("pretrained", False), ("random_init", True)):
    vectors, layers = bert_occurrence_vectors(args.bert, args.bert_workdir, sentences, occurrences,
                                              random_init=random_init)
    report[name] = {layer: stats(vectors[layer]) for layer in layers}
  if args.plot:
    _plot(report, args.plot)
  os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
  emit(report, args.output)


def _plot(report, path):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 3.6))
  layers = list(report["pretrained"])
  x = np.arange(1, len(layers) + 1)
  for name, style in (("pretrained", "-"), ("random_init", ":")):
    for key, colour in (("self_similarity_same_article", "tab:blue"), ("self_similarity_other_article", "tab:orange"),
                        ("different_word_baseline", "tab:gray")):
      ax.plot(x, [report[name][layer][key] for layer in layers], style, color=colour, marker="o",
              label=f"{name.replace('_', ' ')}: {key.replace('_', ' ')}")
  w2v = report["word2vec_vectors"]
  ax.axhline(w2v["different_word_baseline"], color="tab:green", lw=1, label="word2vec: different word baseline")
  ax.set_xticks(x, [str(i) for i in x])
  ax.set_xlabel("BERT layer")
  ax.set_ylabel("mean cosine")
  ax.set_title("Same word, different WikiText-2 sentences (word2vec self-similarity = 1)", fontsize=9)
  ax.legend(fontsize=6, loc="lower left")
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=120)


if __name__ == "__main__":
  main()
