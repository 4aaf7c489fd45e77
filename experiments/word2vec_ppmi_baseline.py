"""The count-based baseline for word2vec: PPMI + SVD of the same corpus, tokenizer and windows
(Levy, Goldberg & Dagan 2015, "Improving Distributional Similarity with Lessons Learned from
Word Embeddings"), scored on the same analogy and similarity sets.

  python experiments/word2vec_ppmi_baseline.py [--config experiments/word2vec_text.py:cpu] [--output ppmi.json]

Co-occurrences of the training rows' words (`<unk>` dropped, as word2vec drops unknown words,
no subsampling) within `method.window` words inside a sentence, weighted (window - d + 1) /
window at distance d (word2vec's expected weight under its randomly shrunk window, Levy et al.'s
"dyn"); positive PMI with the context distribution smoothed to the power 0.75 ("cds"); the
`model.dim` leading singular vectors of the sparse PPMI matrix (`scipy.sparse.linalg.svds`),
scaled by the square root of the singular values ("eig = 0.5").
"""
import argparse

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from report_json import emit
from sslax.config import load_config
from sslax.data import get_source
from sslax.data.tokenize import data_tokenizer
from sslax.eval.word_vectors import vocabulary_words, word_vector_metrics


def cooccurrences(rows: np.ndarray, specials, eos: int, vocab: int, window: int) -> scipy.sparse.csr_matrix:
  """[V, V] symmetric weighted co-occurrence counts of the words of `rows` [R, L]."""
  length = rows.shape[1]
  # one stream: specials removed before windows (as word2vec does), each (row, sentence) its own key
  key = (np.cumsum(rows == eos, axis=1) + np.arange(len(rows))[:, None] * (length + 1)).ravel()
  word = ~np.isin(rows, specials).ravel()
  ids, key = rows.ravel()[word], key[word]
  a, b, w = [], [], []
  for d in range(1, window + 1):
    same = key[d:] == key[:-d]
    a += [ids[:-d][same], ids[d:][same]]
    b += [ids[d:][same], ids[:-d][same]]
    w += [np.full(2 * int(same.sum()), (window - d + 1) / window)]
  counts = scipy.sparse.coo_matrix((np.concatenate(w), (np.concatenate(a), np.concatenate(b))),
                                   shape=(vocab, vocab))
  return counts.tocsr()  # duplicates summed


def ppmi_svd(counts: scipy.sparse.csr_matrix, dim: int, cds: float = 0.75, seed: int = 0) -> np.ndarray:
  """[V, dim] U sqrt(S) of the PPMI matrix of `counts`."""
  counts = counts.tocoo()
  row_sum = np.asarray(counts.sum(axis=1)).ravel()
  col = np.asarray(counts.sum(axis=0)).ravel() ** cds
  d = counts.sum()
  pmi = np.log(counts.data * d / (row_sum[counts.row] * col[counts.col] * d / col.sum()))
  keep = pmi > 0
  ppmi = scipy.sparse.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)
  u, s, _ = scipy.sparse.linalg.svds(ppmi, k=dim, random_state=seed)
  return u * np.sqrt(s)[None, :]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="experiments/word2vec_text.py:cpu")
  parser.add_argument("--output")
  args = parser.parse_args()
  config = load_config(args.config)
  source = get_source(config.data, config.data.train_split)
  rows = np.stack([np.asarray(source[i]["ids"]) for i in range(len(source))])
  specials = [int(v) for v in config.data.special_ids.values()]
  vocab = int(config.model.vocab_size)
  counts = cooccurrences(rows, specials, int(config.data.special_ids.eos), vocab, int(config.method.window))
  vectors = ppmi_svd(counts, int(config.model.dim))
  ids, words = vocabulary_words(data_tokenizer(config.data), specials)
  report = word_vector_metrics(vectors[ids], words, config.eval.word_eval)
  report["nonzero_cooccurrences"] = int(counts.nnz)
  emit(report, args.output)


if __name__ == "__main__":
  main()
