"""APC on spoken digits (FSDD): a 3-layer GRU of width 256 over 40 log-mel bands predicting the frame
5 ahead (s3prl's `n_future`), 2,000 steps of batch 32 (`cpu`); `smoke` for the tests. See
`speech_common` for the front end and `fsdd_common` for the data."""
from speech_common import VARIANTS, frame_config  # noqa: F401 (VARIANTS: the args it takes)


def get_config(arg: str | None = None):
  return frame_config({"name": "apc", "shift": 5}, {"name": "frame_gru", "dim": 256, "depth": 3, "dropout": 0.1},
                      arg, cpu_steps=2000, lr=1e-3, full_model={"dim": 512})  # the paper's 3 x GRU 512
