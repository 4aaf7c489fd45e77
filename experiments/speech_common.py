"""What the filterbank-frame speech configs share (APC, Mockingjay, TERA on FSDD).

Front end (`fbank`): 40 log-mel bands of 25 ms windows (200 samples in a
256-point FFT) every 10 ms at 8 kHz, per-utterance CMVN: s3prl's 80 bands
are for 16 kHz, and at 8 kHz 80 Slaney bands would leave the lowest ones
narrower than an FFT bin.

Variants:
  smoke  a 1-layer model of width 32 on the tests' generated wav folder, 3 steps.
  cpu    3 layers of width 128 on 1 s crops (101 frames), batch 32, AdamW;
         the steps are each config's.
  full   the paper's model sizes (each config's `full_model`) on LibriSpeech 360 h from TFDS by
         name, s3prl's 80 log-mel bands of 25 ms every 10 ms at 16 kHz, 3 s crops.
"""
import ml_collections

from fsdd_common import set_librispeech, smoke_budget, speech_config

VARIANTS = ("cpu", "full", "smoke")


def frame_config(method: dict, model: dict, arg: str | None, *, cpu_steps: int, lr: float, full_model: dict):
  arg = arg or "cpu"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = speech_config(method, model)
  c.fbank = ml_collections.ConfigDict({"kind": "log_mel", "n_fft": 256, "win_length": 200, "hop_length": 80,
                                       "n_mels": 40, "fmin": 0.0, "n_mfcc": 13, "cmvn": True})
  c.optim.weight_decay, c.optim.grad_clip_norm = 0.01, 1.0
  if arg == "full":
    # s3prl's front end at 16 kHz (80 bands, 25 ms every 10 ms) on LibriSpeech 360 h; the model
    # sizes are the paper's (`full_model`); batch 32 and 1M steps at AdamW 2e-4 are s3prl's order of
    # magnitude, not checked against its runner configs
    set_librispeech(c, train_split="train_clean360", crop_samples=48000, max_samples=48000)
    c.fbank.update({"n_fft": 400, "win_length": 400, "hop_length": 160, "n_mels": 80})
    c.model.update(full_model)
    c.train.batch_size, c.train.num_steps = 32, 1_000_000
    c.optim.lr, c.optim.warmup_steps = 2e-4, 7_000
  elif arg == "cpu":
    c.train.batch_size, c.train.num_steps = 32, cpu_steps
    c.optim.lr, c.optim.warmup_steps = lr, cpu_steps // 10
    c.train.log_every, c.train.checkpoint_every = 50, 500
    c.eval.knn_k = 20
  else:
    c.model.dim, c.model.depth, c.model.dropout = 32, 1, 0.0
    if "num_heads" in c.model:
      c.model.num_heads, c.model.mlp_dim = 2, 64
    if "mask_consecutive" in c.method:  # 21 frames: round(21 * 0.15 / 3) = 1 span (of 7: none)
      c.method.mask_consecutive = 3
    smoke_budget(c)
  return c
