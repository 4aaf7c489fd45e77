"""Mockingjay on spoken digits (FSDD): a 3-layer post-norm Transformer of width 128 over 40 log-mel
bands, 15% of the frames masked in runs of 7 (80/10/10), 2,000 steps of batch 32 (`cpu`); `smoke`
for the tests. See `speech_common` for the front end and `fsdd_common` for the data."""
from speech_common import VARIANTS, frame_config  # noqa: F401 (VARIANTS: the args it takes)

METHOD = {"name": "mockingjay", "mask_proportion": 0.15, "mask_consecutive": 7, "mask_frequency": 0.0,
          "noise_proportion": 0.0}
MODEL = {"name": "frame_transformer", "dim": 128, "depth": 3, "num_heads": 4, "mlp_dim": 512, "dropout": 0.1}
FULL_MODEL = {"dim": 768, "depth": 3, "num_heads": 12, "mlp_dim": 3072}  # the paper's BASE


def get_config(arg: str | None = None):
  return frame_config(METHOD, MODEL, arg, cpu_steps=2000, lr=5e-4, full_model=FULL_MODEL)
