"""The Free Spoken Digit Dataset as every speech config reads it: `../shared/data/fsdd/recordings`
(3,000 recordings of 6 speakers, 8 kHz) through the TFDS audio-folder builder, with the usual
split (recordings with index 0-4 of each speaker and digit are test), digit labels and speaker
probes; and LibriSpeech from TFDS by name, which the `full` (paper-scale) variants read."""
import ml_collections

FSDD = "../shared/data/fsdd/recordings"


def set_fsdd(c: ml_collections.ConfigDict, max_samples: int = 18432) -> None:
  """Points `c.data` at FSDD at 8 kHz, recordings cut or padded to `max_samples`, and probes digit
  ("label") and speaker."""
  c.data.source = "audio_folder"
  c.data.paths = {"train": FSDD, "test": FSDD}
  c.data.split_filter = {"train": "index>=5", "test": "index<5"}
  c.data.filename_pattern = r"(?P<label>\d+)_(?P<speaker>[^_]+)_(?P<index>\d+)\.wav"
  c.data.labels_csv = ml_collections.FieldReference(None, field_type=str)
  c.data.sample_rate, c.data.max_samples = 8000, max_samples
  c.eval.extra_labels = ("speaker",)
  c.eval.feature_layer = "last"


def speech_config(method: dict, model: dict, *, crop_samples: int = 8000, max_samples: int = 18432):
  """`base_config()` without the image sections, with `method`, `model`, an `audio.crop_samples` and
  FSDD (`set_fsdd`); AdamW with the learning rate as given (no batch scaling); the collapse
  monitor logs the pooled features without alarms (they are not an embedding trained to spread)."""
  from sslax.config import base_config

  c = base_config()
  for image_only in ("augment", "augment_view2", "projector"):
    del c[image_only]
  c.method = ml_collections.ConfigDict(method)
  c.model = ml_collections.ConfigDict(model)
  c.audio = ml_collections.ConfigDict({"crop_samples": crop_samples})
  set_fsdd(c, max_samples)
  c.optim.name, c.optim.scale_lr_with_batch, c.optim.b1, c.optim.b2 = "adamw", False, 0.9, 0.999
  c.monitor.collapse_std_ratio, c.monitor.collapse_rank = 0.0, 0.0
  return c


def smoke_budget(c: ml_collections.ConfigDict) -> None:
  """The `smoke` variants' shared budget on the tests' generated folder (0.2 s crops of 0.3 s
  recordings, 3 steps of batch 8, kNN only), so their compiled programs differ only by model."""
  c.audio.crop_samples, c.data.max_samples = 1600, 2400
  c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 8, 3, 1, 3
  c.optim.lr, c.optim.warmup_steps = 1e-3, 1
  c.eval.knn_k, c.eval.linear_probe, c.eval.batch_size = 5, False, 64


def set_librispeech(c: ml_collections.ConfigDict, *, train_split: str = "train_clean100+train_clean360+train_other500",
                    crop_samples: int = 250000, max_samples: int = 250000) -> None:
  """Points `c.data` at TFDS `librispeech` (16 kHz; its records: speech int16, speaker_id) for a
  paper-scale run: `train_split` for pretraining, dev_clean for the (speaker) probes."""
  c.data.source, c.data.name = "tfds", "librispeech"
  c.data.train_split, c.data.eval_split = train_split, "dev_clean"
  c.data.sample_rate, c.data.max_samples = 16000, max_samples
  c.data.record_keys = {"audio": "speech", "label": "speaker_id", "speaker": "speaker_id"}
  c.audio.crop_samples = crop_samples
  c.eval.extra_labels = ()
  c.train.log_every, c.train.checkpoint_every = 200, 5000
