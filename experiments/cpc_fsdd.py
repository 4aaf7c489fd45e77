"""CPC on spoken digits (FSDD): CPC_audio's network at 8 kHz — 4 convolutions of 256 channels
(kernels 10, 8, 4, 4; strides 5, 4, 2, 2: 10 ms frames), a GRU of 256, K = 12 linear predictors, 128
negatives from the same utterance — on 1 s crops, batch 32, 1,500 steps of Adam lr 2e-4 as CPC_audio
(`cpu`); `smoke` for the tests. Data as `fsdd_common`.
"""
from fsdd_common import set_librispeech, smoke_budget, speech_config

VARIANTS = ("cpu", "full", "smoke")


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = speech_config({"name": "cpc", "num_predicts": 12, "num_negatives": 128, "negatives": "utterance"},
                    {"name": "cpc", "conv_layers": ((256, 10, 5), (256, 8, 4), (256, 4, 2), (256, 4, 2)),
                     "hidden": 256})
  c.optim.weight_decay = 0.0
  if arg == "full":  # CPC_audio on LibriSpeech 100 h: strides 5, 4, 2, 2, 2 at 16 kHz, 20,480-sample windows
    set_librispeech(c, train_split="train_clean100", crop_samples=20480, max_samples=20480)
    c.model.conv_layers = ((256, 10, 5), (256, 8, 4), (256, 4, 2), (256, 4, 2), (256, 4, 2))
    c.train.batch_size, c.train.num_steps = 64, 200_000
    c.optim.lr, c.optim.warmup_steps = 2e-4, 10_000
  elif arg == "cpu":
    c.train.batch_size, c.train.num_steps = 32, 1500
    c.optim.lr, c.optim.warmup_steps = 2e-4, 100
    c.train.log_every, c.train.checkpoint_every = 50, 500
    c.eval.knn_k = 20
  else:
    c.model.conv_layers, c.model.hidden = ((32, 10, 5), (32, 8, 4), (32, 4, 2)), 32
    c.method.num_predicts, c.method.num_negatives = 3, 8
    smoke_budget(c)
  return c
