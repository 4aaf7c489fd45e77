"""Bad inputs fail with a ValueError naming the field, expected and actual value, before any compiled step."""
import numpy as np
import pytest

from helpers import digits_smoke_config
from sslax.data import ArraySource, train_dataset
from sslax.methods import make_method


@pytest.fixture
def method():
  return make_method(digits_smoke_config())


@pytest.mark.parametrize("image,match", [
    (np.zeros((8, 8, 8), np.uint8), r"batch.image: expected rank 4 \[B, H, W, C\], got rank 3"),
    (np.zeros((8, 8, 8, 3), np.uint8), r"batch.image: expected 1 channels \(model.in_channels\), got 3"),
    (np.zeros((8, 8, 8, 1), np.int32), "batch.image: expected dtype uint8 or float, got int32"),
    (np.zeros((12, 8, 8, 1), np.uint8), "batch.image: expected a batch size divisible by the 8 devices, got 12"),
    (np.zeros((0, 8, 8, 1), np.uint8), "batch.image: expected a non-empty batch, got batch size 0"),
])
def test_bad_batches_are_rejected(method, image, match):
  with pytest.raises(ValueError, match=match):
    method.validate_batch({"image": image}, num_devices=8)


def test_missing_image_key(method):
  with pytest.raises(ValueError, match="batch: expected an 'image' entry"):
    method.validate_batch({"pixels": np.zeros((8, 8, 8, 1), np.uint8)}, num_devices=8)


def test_empty_and_too_small_datasets():
  from sslax.data.sources import get_source
  import ml_collections

  with pytest.raises(ValueError, match="images: expected uint8"):
    ArraySource(np.zeros((4, 8, 8), np.uint8), np.zeros(4))
  with pytest.raises(ValueError, match="labels: expected 4 labels"):
    ArraySource(np.zeros((4, 8, 8, 1), np.uint8), np.zeros(3))
  with pytest.raises(ValueError, match="batch_size: the train split has 4 examples, fewer than the global batch size 8"):
    train_dataset(ArraySource(np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4)), global_batch_size=8, seed=0)
  with pytest.raises(ValueError, match="data.source: expected one of"):
    get_source(ml_collections.ConfigDict({"source": "ftp"}), "train")


def test_train_rejects_bad_input_before_compiling(tmp_path, monkeypatch):
  """A config whose channels do not match the data fails in the input check, not in XLA."""
  import sslax.train.loop as loop

  config = digits_smoke_config()
  config.model.in_channels = 3
  config.augment.mean, config.augment.std = (0.3, 0.3, 0.3), (0.4, 0.4, 0.4)
  compiled = []
  monkeypatch.setattr(loop, "make_train_step", lambda *a, **k: compiled.append(1))
  with pytest.raises(ValueError, match=r"batch.image: expected 3 channels \(model.in_channels\), got 1"):
    loop.train(config, str(tmp_path / "run"), progress=False)
  assert not compiled
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_empty_image_folder_fails(tmp_path):
  from sslax.data import image_folder_sources

  (tmp_path / "empty" / "cls").mkdir(parents=True)
  with pytest.raises(ValueError, match="data.paths: no readable `<class>/<image>` files found"):
    image_folder_sources({"train": str(tmp_path / "empty")}, data_dir=str(tmp_path / "tfds"))
  with pytest.raises(ValueError, match="data.paths.train: expected an existing folder or tar"):
    image_folder_sources({"train": str(tmp_path / "nope")}, data_dir=str(tmp_path / "tfds"))
