"""TERA on spoken digits (FSDD): Mockingjay's model and budget (`mockingjay_fsdd`) with s3prl's
`logMelBase-T-F-M` alterations: time masks (15%, runs of 7), a frequency band of up to 20% of the
bins, Gaussian noise on 15% of the utterances."""
from mockingjay_fsdd import FULL_MODEL, METHOD, MODEL
from speech_common import VARIANTS, frame_config  # noqa: F401 (VARIANTS: the args it takes)


def get_config(arg: str | None = None):
  return frame_config({**METHOD, "name": "tera", "mask_frequency": 0.2, "noise_proportion": 0.15}, MODEL, arg,
                      cpu_steps=2000, lr=5e-4, full_model=FULL_MODEL)
