import numpy as np

from helpers import write_image_tar
from sslax.data import ArraySource, digits_arrays, eval_batches, image_folder_sources, train_dataset


def test_digits_split_is_fixed_and_disjoint():
  xtr, ytr = digits_arrays("train")
  xte, yte = digits_arrays("test")
  assert xtr.shape == (1257, 8, 8, 1) and xte.shape == (540, 8, 8, 1) and xtr.dtype == np.uint8
  assert set(np.unique(ytr)) == set(range(10))
  np.testing.assert_array_equal(digits_arrays("train")[0], xtr)


def test_image_folder_tar_and_directory_take_the_same_tfds_path(tmp_path):
  import tarfile

  tar = write_image_tar(str(tmp_path / "train.tar.gz"), num_per_class=5)
  folder = tmp_path / "folder"
  with tarfile.open(tar) as t:
    t.extractall(folder, filter="data")
  src_tar = image_folder_sources({"train": tar}, data_dir=str(tmp_path / "tfds"))["train"]
  src_dir = image_folder_sources({"train": str(folder)}, data_dir=str(tmp_path / "tfds"))["train"]
  assert len(src_tar) == len(src_dir) == 15
  recs = sorted((int(src_tar[i]["label"]), src_tar[i]["image"].tobytes()) for i in range(15))
  recs_dir = sorted((int(src_dir[i]["label"]), src_dir[i]["image"].tobytes()) for i in range(15))
  assert recs == recs_dir
  assert src_tar[0]["image"].shape == (16, 16, 3) and src_tar[0]["image"].dtype == np.uint8
  # array_record files were written under the TFDS data dir
  assert list((tmp_path / "tfds").rglob("*.array_record*"))


def test_train_iterator_covers_each_epoch_once_and_resumes_exactly():
  images = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1)
  source = ArraySource(images, np.arange(20))
  ds = train_dataset(source, global_batch_size=4, seed=3)
  it = iter(ds)
  epoch1 = np.concatenate([next(it)["label"] for _ in range(5)])
  assert sorted(epoch1) == list(range(20))
  state = it.get_state()
  rest = [next(it)["label"] for _ in range(7)]  # crosses into epoch 3
  it2 = iter(ds)
  it2.set_state(state)
  np.testing.assert_array_equal(np.concatenate(rest), np.concatenate([next(it2)["label"] for _ in range(7)]))
  epoch2 = np.concatenate(rest[:5])
  assert sorted(epoch2) == list(range(20)) and not np.array_equal(epoch1, epoch2)


def test_eval_batches_cover_split_in_order():
  source = ArraySource(np.zeros((10, 2, 2, 1), np.uint8), np.arange(10))
  labels = np.concatenate([b["label"] for b in eval_batches(source, batch_size=4)])
  np.testing.assert_array_equal(labels, np.arange(10))
