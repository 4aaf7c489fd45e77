"""Speaker embeddings with FaceNet's triplet loss on spoken digits (FSDD): Mockingjay's encoder
(`mockingjay_fsdd`: 3 post-norm Transformer layers of width 128 over 40 log-mel bands), mean-pooled,
a 256-128 projector, l2-normalized; two 0.5 s crops of each recording, positives every recording of
the anchor's speaker, semi-hard negatives over the global batch of 64 crops, margin 0.2; 1,500
steps of batch 32 (`cpu`); `smoke` for the tests; `full`: LibriSpeech 360 h's speakers.

  sslax train --config experiments/triplet_fsdd.py:cpu --workdir runs/speech_fsdd/triplet

`--set method.positives=crops` trains without the speaker ids (the other crop is the only
positive). The probes read the pooled encoder; `Verification` adds speaker recall@1 and EER of the
pooled encoder and of the embedding on the test recordings."""
import ml_collections

from mockingjay_fsdd import FULL_MODEL, MODEL
from speech_common import VARIANTS, frame_config  # noqa: F401 (VARIANTS: the args it takes)


def get_config(arg: str | None = None):
  method = {"name": "speaker_triplet", "margin": 0.2, "mining": "semi_hard", "positives": "speaker"}
  c = frame_config(method, MODEL, arg, cpu_steps=1500, lr=5e-4, full_model=FULL_MODEL)
  c.projector = ml_collections.ConfigDict({"hidden_dim": 256, "out_dim": 128})
  if arg == "full":
    c.eval.extra_labels = ("speaker",)  # LibriSpeech's label is the speaker too: verification reads it
    c.projector.hidden_dim, c.projector.out_dim = 1024, 256
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim = 32, 16
  else:  # cpu: 0.5 s crops (51 frames), so a recording's two crops differ
    c.audio.crop_samples = 4000
  return c
