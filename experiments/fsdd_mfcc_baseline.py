"""The hand-crafted baseline for the wav2vec 2.0 FSDD probes: MFCC statistics + the same probes.

  python experiments/fsdd_mfcc_baseline.py [--config experiments/wav2vec2_fsdd.py:cpu] [--output mfcc.json]

Reads the same splits through the same TFDS audio-folder builder as the
pretraining run, computes 13 MFCCs and their deltas with librosa (25 ms
windows, 10 ms hop, 40 mel bands), pools each recording to the mean and
standard deviation over time (52 numbers), and runs the same kNN and linear
probes for digit and speaker, and speaker verification (recall@1, EER) on
the test recordings. Needs `pip install -e '.[audio]'`.
"""
import argparse

import librosa
import numpy as np

from report_json import emit
from sslax.config import load_config
from sslax.data import get_source
from sslax.eval import knn_accuracy, linear_probe
from sslax.eval.verification import verification_metrics


def mfcc_stats(audio: np.ndarray, rate: int) -> np.ndarray:
  n_fft, hop = int(0.025 * rate), int(0.010 * rate)
  m = librosa.feature.mfcc(y=audio.astype(np.float32), sr=rate, n_mfcc=13, n_fft=n_fft, hop_length=hop, n_mels=40)
  d = librosa.feature.delta(m, width=min(9, m.shape[1] - (1 - m.shape[1] % 2))) if m.shape[1] >= 3 else np.zeros_like(m)
  feats = np.concatenate([m, d])
  return np.concatenate([feats.mean(1), feats.std(1)]).astype(np.float32)


def split_features(source, rate):
  x = np.stack([mfcc_stats(np.asarray(source[i]["audio"]), rate) for i in range(len(source))])
  labels = {k: np.array([int(source[i][k]) for i in range(len(source))]) for k in ("label", "speaker")}
  return x, labels


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="experiments/wav2vec2_fsdd.py:cpu")
  parser.add_argument("--output")
  args = parser.parse_args()
  config = load_config(args.config)
  rate = config.data.sample_rate
  train_x, train_y = split_features(get_source(config.data, config.data.train_split), rate)
  test_x, test_y = split_features(get_source(config.data, config.data.eval_split), rate)
  report = {}
  for key in ("label", "speaker"):
    prefix = "" if key == "label" else f"{key}/"
    report[f"{prefix}knn_top1"] = knn_accuracy(train_x, train_y[key], test_x, test_y[key], k=config.eval.knn_k,
                                               temperature=config.eval.knn_temperature)
    report[f"{prefix}linear_top1"] = linear_probe(train_x, train_y[key], test_x, test_y[key], seed=0)["top1"]
  for k, v in verification_metrics(test_x, test_y["speaker"]).items():  # speaker recall@1 and EER
    report[f"speaker/{k}"] = v
  emit(report, args.output)


if __name__ == "__main__":
  main()
