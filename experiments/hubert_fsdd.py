"""HuBERT on spoken digits (FSDD): wav2vec 2.0's `cpu` network (`wav2vec2_fsdd`) without the
quantizer. Iteration 1 predicts the k-means clusters (100, as the paper's first iteration) of 39
MFCC numbers per 20 ms frame at the masked frames; iteration 2 trains the same network from
scratch on 500 clusters of the iteration-1 network's `layer_1` (the output of 2 of its 4 layers,
as the paper's BASE takes layer 6 of 12).

Variants: smoke (the tests' generated folder, 3 steps), cpu (1,500 steps of batch 32, 1 s crops,
wav2vec 2.0's optimizer), full (BASE on LibriSpeech 960 h: wav2vec 2.0's `full` network and
optimizer, 250k steps; iteration 2 400k steps on layer 6 of 12); `iteration2_<variant>` the same with the second
iteration's targets, from the iteration-1 run that `train.init_from` copies into the method
state (default runs/speech_fsdd/hubert, where run_speech_fsdd.sh puts iteration 1; another:
`--set "train.init_from=(('method_state/teacher', 'runs/hubert', ''),)"`). The paper's mask_prob 0.8 and span 10, temperature 0.1,
feature penalty 10 in all.
"""
import ml_collections

from wav2vec2_fsdd import get_config as wav2vec2_config

VARIANTS = ("cpu", "full", "smoke", "iteration2_cpu", "iteration2_full", "iteration2_smoke")


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  iteration2 = arg.startswith("iteration2_")
  arg = arg.removeprefix("iteration2_")
  c = wav2vec2_config(arg)
  c.method = ml_collections.ConfigDict({
      "name": "hubert", "targets": "mfcc", "num_clusters": 100, "temperature": 0.1, "mask_prob": 0.8, "mask_length": 10,
      "min_masks": 2, "feature_penalty_weight": 10.0, "kmeans_frames": 100_000, "kmeans_iters": 50})
  stride = 1
  for layer in c.model.conv_layers:
    stride *= layer[2]
  # 13 MFCCs of 40 mel bands, 25 ms windows every conv frame (20 ms at 8 kHz), per-utterance CMVN
  c.fbank = ml_collections.ConfigDict({"kind": "mfcc", "n_fft": 256, "win_length": 200, "hop_length": stride,
                                       "n_mels": 40, "n_mfcc": 13, "fmin": 0.0, "cmvn": True})
  if arg == "smoke":
    c.method.num_clusters, c.method.kmeans_frames, c.method.kmeans_iters = 8, 2000, 5
  elif arg == "full":  # BASE: fairseq's kaldi MFCCs (23 bands, 25 ms every 20 ms at 16 kHz), 250k steps
    c.fbank.update({"n_fft": 400, "win_length": 400, "n_mels": 23})
    c.method.kmeans_frames = 1_000_000
    c.train.num_steps = 250_000
  if iteration2:
    layer = {"cpu": "layer_1", "full": "layer_5", "smoke": "layer_0"}[arg]  # half the depth: BASE's layer 6 of 12
    c.method.update({"targets": "layer", "teacher_layer": layer, "teacher_clusters": c.method.num_clusters,
                     "num_clusters": 8 if arg == "smoke" else 500})
    c.train.init_from = (("method_state/teacher", "runs/hubert" if arg == "full" else "runs/speech_fsdd/hubert", ""),)
    if arg == "full":
      c.train.num_steps = 400_000
  return c
