"""Temporal distance prediction on spoken digits (FSDD): Mockingjay's encoder (`mockingjay_fsdd`)
classifying two 100 ms segments (10 log-mel frames) of one recording as adjacent (gap 0-2 frames),
near (3-9) or far (10-29), and in which order: 6 classes, chance 1/6. 1,500 steps of batch 32 on 1 s
crops (`cpu`); `smoke` for the tests."""
from mockingjay_fsdd import FULL_MODEL, MODEL
from speech_common import VARIANTS, frame_config  # noqa: F401 (VARIANTS: the args it takes)


def get_config(arg: str | None = None):
  c = frame_config({"name": "temporal_distance", "segment_frames": 10, "gap_edges": (0, 3, 10, 30)}, MODEL, arg,
                   cpu_steps=1500, lr=5e-4, full_model=FULL_MODEL)
  if arg == "smoke":  # 21 frames of a 1,600-sample crop
    c.method.segment_frames, c.method.gap_edges = 4, (0, 2, 5, 10)
  return c
