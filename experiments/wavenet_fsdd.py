"""WaveNet on spoken digits (FSDD), unconditional: 256 mu-law classes at 8 kHz.

  cpu    2 stacks of dilations 1, 2, ..., 512 (20 blocks; receptive field 2,048 samples =
         0.26 s), 32 residual and 128 skip channels; 0.5 s crops, batch 8, 1,500 steps of
         Adam lr 1e-3 (ibab/tensorflow-wavenet's defaults but narrower); 2 s of samples.
         Recordings are cut at 1 s (8,000 samples; FSDD's are 0.4 s on average) for the
         probes and the held-out bits: every sample of padding costs a full network pass.
  smoke  dilations 1, 2, ..., 32 of width 8 on the tests' generated folder, 3 steps.
Data as `fsdd_common`.
"""
from fsdd_common import set_librispeech, smoke_budget, speech_config

VARIANTS = ("cpu", "full", "smoke")


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = speech_config({"name": "wavenet", "sample_seconds": 2.0, "temperature": 1.0},
                    {"name": "wavenet", "dilations": tuple(2**i for i in range(10)) * 2, "channels": 32,
                     "skip": 128, "classes": 256}, crop_samples=4000, max_samples=8000)
  c.optim.weight_decay, c.optim.grad_clip_norm = 0.0, 1.0
  if arg == "full":  # ibab/tensorflow-wavenet's defaults: 5 stacks of 1..512, 32 / 512 channels, 100k-sample pieces
    set_librispeech(c, train_split="train_clean100", crop_samples=100_000, max_samples=160_000)
    c.model.dilations, c.model.channels, c.model.skip = tuple(2**i for i in range(10)) * 5, 32, 512
    c.train.batch_size, c.train.num_steps = 8, 100_000
    c.optim.lr, c.optim.warmup_steps = 1e-3, 1000
  elif arg == "cpu":
    c.train.batch_size, c.train.num_steps = 8, 1500
    c.optim.lr, c.optim.warmup_steps = 1e-3, 100
    c.train.log_every, c.train.checkpoint_every = 50, 500
    c.eval.knn_k, c.eval.batch_size = 20, 64
  else:
    c.model.dilations, c.model.channels, c.model.skip = (1, 2, 4, 8, 16, 32), 8, 16
    c.method.sample_seconds = 0.01
    smoke_budget(c)
  return c
