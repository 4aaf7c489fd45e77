"""wav2vec 2.0 on spoken digits (FSDD), and the BASE recipe on LibriSpeech.

Variants (the `arg` of `get_config`):
  smoke  a 1-layer model of width 32 on the tests' generated wav folder, 3 steps.
  cpu    a small model for 2 CPU cores: conv stack of 128 channels with a
         total stride of 160 (20 ms frames at 8 kHz), a 4-layer Transformer of
         width 128, G=2 groups of V=64 codewords; 1 s crops, batch 32.
  full   the paper's BASE recipe (fairseq `wav2vec2_base_librispeech`): 7
         conv layers of 512, 12 layers of 768, G=2 x V=320, final dim 256,
         p=0.65/M=10, K=100, kappa 0.1, alpha 0.1, feature penalty 10,
         Gumbel temperature (2, 0.5, 0.999995), Adam (0.9, 0.98, eps 1e-6),
         lr 5e-4 with 32k warm-up and linear decay over 400k steps, crops of
         250k samples at 16 kHz, on LibriSpeech from TFDS by name. fairseq
         batches by 1.4M samples per GPU on 64 GPUs; here a fixed batch of
         512 recordings stands in for it.

  base   BASE's sizes (as `full`) on FSDD resampled to 16 kHz, for probing or fine-tuning a
         wav2vec 2.0 BASE checkpoint on disk: `sslax eval --config
         experiments/wav2vec2_fsdd.py:base --set model.init_from='<Hugging Face directory>'`.

FSDD (`cpu`, `base`) is `../shared/data/fsdd/recordings`, 8 kHz, with the usual
split: recordings with index 0-4 of each speaker and digit are test.
"""
import ml_collections

from fsdd_common import set_librispeech, smoke_budget, speech_config
from sslax.config import pretrained_fields

VARIANTS = ("base", "cpu", "full", "smoke")


def _model(dim, depth, heads, mlp, conv_layers, final_dim, groups, num_vars, pos_kernel, pos_groups, drop):
  return ml_collections.ConfigDict({
      "name": "wav2vec2", "conv_layers": conv_layers, "extractor_mode": "group_norm", "dim": dim,
      "depth": depth, "num_heads": heads, "mlp_dim": mlp, "final_dim": final_dim, "latent_groups": groups,
      "latent_vars": num_vars, "pos_conv_kernel": pos_kernel, "pos_conv_groups": pos_groups, "dropout": drop,
      "dropout_input": drop, "dropout_features": drop, "feature_grad_mult": 0.1, **pretrained_fields()})


def get_config(arg: str | None = None):
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = speech_config({
      "name": "wav2vec2", "temperature": 0.1, "num_negatives": 100, "diversity_weight": 0.1,
      "feature_penalty_weight": 10.0, "mask_prob": 0.65, "mask_length": 10, "min_masks": 2,
      "gumbel_temperature": (2.0, 0.5, 0.999995)}, {})
  c.optim.schedule, c.optim.b2, c.optim.eps, c.optim.weight_decay = "linear", 0.98, 1e-6, 0.01
  # `sslax finetune`: one labelled recording per digit per speaker; the conv feature encoder stays
  # fixed, as in the paper's fine-tuning
  c.finetune.per_group, c.finetune.group_by = 1, ("label", "speaker")
  c.finetune.steps, c.finetune.lr, c.finetune.batch_size, c.finetune.warmup_steps = 300, 3e-4, 32, 30
  c.finetune.freeze = ("feature_encoder",)
  small_convs = ((128, 10, 5),) + ((128, 3, 2),) * 3 + ((128, 2, 2),) * 2
  if arg in ("full", "base"):
    c.model = _model(768, 12, 12, 3072, ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2,
                     256, 2, 320, 128, 16, 0.1)
  if arg == "base":  # FSDD at the 16 kHz BASE checkpoints were trained on (the 20 ms frames of their strides)
    c.data.sample_rate, c.data.max_samples, c.audio.crop_samples = 16000, 36864, 16000
    c.train.batch_size, c.train.num_steps, c.eval.knn_k = 8, 1000, 20
    c.optim.lr, c.optim.warmup_steps = 5e-5, 100
  elif arg == "full":
    set_librispeech(c)
    c.train.batch_size, c.train.num_steps = 512, 400_000
    c.optim.lr, c.optim.warmup_steps = 5e-4, 32_000
  elif arg == "cpu":
    c.model = _model(128, 4, 4, 512, small_convs, 128, 2, 64, 32, 8, 0.05)
    c.train.batch_size, c.train.num_steps = 32, 1500
    # the paper anneals over 400k steps; in 1,500 the same 2 -> 0.5 needs a faster decay
    c.method.gumbel_temperature = (2.0, 0.5, 0.999)
    c.optim.lr, c.optim.warmup_steps = 1e-3, 150
    c.train.log_every, c.train.checkpoint_every = 50, 500
    c.eval.knn_k = 20
  else:
    c.model = _model(32, 1, 2, 64, ((32, 10, 5), (32, 3, 2), (32, 2, 2)), 32, 2, 8, 8, 4, 0.0)
    c.method.num_negatives = 10
    smoke_budget(c)
    c.finetune.steps, c.finetune.batch_size, c.finetune.warmup_steps, c.finetune.lr = 20, 8, 2, 1e-3
  return c
