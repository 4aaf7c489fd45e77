"""The Free Spoken Digit Dataset as every speech config reads it: `../shared/data/fsdd/recordings`
(3,000 recordings of 6 speakers, 8 kHz) through the TFDS audio-folder builder, with the usual
split (recordings with index 0-4 of each speaker and digit are test), digit labels and speaker
probes."""
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
