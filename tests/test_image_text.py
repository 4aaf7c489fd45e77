"""Image-text pretraining: the caption builder, SigLIP against NumPy and big_vision's formula, the
chunked SigLIP against the dense one on 1 and 8 devices, recall@k against a hand-built matrix,
and CLIP / SigLIP smoke runs (SigLIP's image tower started from CLIP's run and locked)."""
import csv
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from helpers import ROOT, png_bytes, write_image_tar
from sslax.config import apply_overrides, load_config
from sslax.eval.retrieval import retrieval_recall
from sslax.losses.sigmoid import siglip_loss, siglip_loss_chunked

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200), "white": (230, 230, 230)}
SHAPES = ("dog", "cat", "frog")


def write_caption_folder(root, *, per_colour=10, seed=0):
  """A generated Flickr-style dataset: images/<name>.png whose colour the captions name, a
  captions CSV (3 captions each), train / test lists (the test list names one missing image)."""
  rng = np.random.default_rng(seed)
  images = os.path.join(root, "images")
  os.makedirs(images)
  names = []
  for colour, rgb in COLOURS.items():
    for i in range(per_colour):
      name = f"{colour}_{i}.png"
      size = (12 + i % 3, 14)  # images differ in size: the pipeline resizes
      img = np.clip(np.asarray(rgb, np.float32) + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
      with open(os.path.join(images, name), "wb") as f:
        f.write(png_bytes(img))
      names.append((name, colour))
  with open(os.path.join(root, "captions.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["image", "caption"])
    for name, colour in names:
      for j in range(3):
        w.writerow([name, f"a {colour} {SHAPES[j]} in the {colour} light"])
  test = [n for n, _ in names if n.endswith(("_0.png", "_1.png"))]
  train = [n for n, _ in names if n not in test]
  for split, listed in (("train", train), ("test", test + ["not_here.jpg"])):
    with open(os.path.join(root, f"{split}.txt"), "w") as f:
      f.write("\n".join(listed) + "\n")
  return {"images": images, "captions": os.path.join(root, "captions.csv"),
          "paths": {"train": os.path.join(root, "train.txt"), "test": os.path.join(root, "test.txt")}}


def smoke_config(method, folder, data_dir, **overrides):
  config = load_config(os.path.join(ROOT, "experiments", f"{method}_flickr8k.py:smoke"))
  config.data.images, config.data.captions = folder["images"], folder["captions"]
  config.data.paths = folder["paths"]
  config.data.data_dir = str(data_dir)
  return apply_overrides(config, [f"{k}={v!r}" for k, v in overrides.items()])


# -- data ---------------------------------------------------------------------------------------

def test_caption_builder_gives_one_record_per_image_with_all_its_captions(tmp_path):
  from sslax.data import get_source

  folder = write_caption_folder(tmp_path / "data")
  config = smoke_config("clip", folder, tmp_path / "tfds")
  train, test = get_source(config.data, "train"), get_source(config.data, "test")
  assert (len(train), len(test)) == (32, 8)  # the listed name with no file is left out
  record = test[0]
  assert record["captions"].shape == (3, 16) and record["caption_lengths"].tolist() == [9, 9, 9]
  assert record["image"].dtype == np.uint8 and record["image"].shape[-1] == 3
  # [CLS] tokens [SEP], padded; decoding the tokens gives the caption back
  from sslax.data.captions import caption_tokenizer

  tok = caption_tokenizer(config.data, None)
  ids = record["captions"][0]
  assert ids[0] == 2 and ids[8] == 3 and set(ids[9:].tolist()) == {0}
  assert tok.decode(ids[1:8].tolist()) == test.texts[0][0].lower()


def test_caption_builder_names_a_bad_image_and_an_image_without_caption(tmp_path):
  from sslax.data import get_source

  folder = write_caption_folder(tmp_path / "data")
  with open(os.path.join(folder["images"], "red_3.png"), "wb") as f:
    f.write(b"not an image")
  config = smoke_config("clip", folder, tmp_path / "tfds")
  with pytest.raises(ValueError, match=r"red_3.png: cannot decode the image"):
    get_source(config.data, "train")
  config = smoke_config("clip", folder, tmp_path / "tfds", **{"data.on_bad_example": "skip"})
  assert len(get_source(config.data, "train")) == 31
  config = smoke_config("clip", folder, tmp_path / "tfds", **{"data.captions": str(tmp_path / "none.csv")})
  with pytest.raises(ValueError, match=r"data.captions: expected an existing CSV file"):
    get_source(config.data, "train")


def test_tfds_coco_captions_records_read_like_the_local_ones():
  from sslax.data.captions import CaptionedImages, frame_captions
  from sslax.data.tokenize import train_tokenizer

  records = [{"image": np.zeros((4, 5, 3), np.uint8),  # TFDS `coco_captions`: captions.text is a list
              "captions": {"id": np.arange(k), "text": np.array([f"a cat number {i}".encode() for i in range(k)])}}
             for k in (2, 4)]
  tok = train_tokenizer([f"a cat number {i}" for i in range(4)], kind="wordpiece", vocab_size=60)
  source = CaptionedImages(records, tok, caption_len=8, max_captions=3, framing="cls_sep",
                           special_ids={"pad": 0, "cls": 2, "sep": 3})
  assert source[0]["caption_lengths"].tolist() == [6, 6, 0] and source[1]["caption_lengths"].tolist() == [6, 6, 6]
  ids, lengths = frame_captions([tok.encode("a cat number 2", add_special_tokens=False).ids], caption_len=8,
                                framing="cls_sep", special_ids={"pad": 0, "cls": 2, "sep": 3})
  np.testing.assert_array_equal(source[1]["captions"][2], ids[0])
  assert source.texts[1] == [f"a cat number {i}" for i in range(4)]  # the strings, all kept for reports


def test_caption_batches_are_checked_before_anything_is_compiled(tmp_path):
  from sslax.data import Captions

  captions = Captions(caption_len=6, max_captions=2, vocab_size=50)
  good = {"captions": np.ones((8, 2, 6), np.int32), "caption_lengths": np.full((8, 2), 3, np.int32)}
  captions.validate_batch(good, 8)
  with pytest.raises(ValueError, match=r"batch.captions: expected int \[B, 2, 6\]"):
    captions.validate_batch({**good, "captions": np.ones((8, 2, 7), np.int32)}, 8)
  with pytest.raises(ValueError, match=r"at least one caption per image"):
    captions.validate_batch({**good, "caption_lengths": np.zeros((8, 2), np.int32)}, 8)
  with pytest.raises(ValueError, match=r"token ids in \[0, text.vocab_size=50\)"):
    captions.validate_batch({**good, "captions": np.full((8, 2, 6), 50, np.int32)}, 8)


def test_a_locked_tower_must_be_frozen_in_the_optimizer(tmp_path):
  from sslax.methods import make_method

  folder = {"images": "x", "captions": "x", "paths": {"train": "x", "test": "x"}}
  config = smoke_config("clip", folder, tmp_path, **{"method.lock_image": True})
  with pytest.raises(ValueError, match=r"optim.freeze: expected 'image_tower' in it \(method.lock_image is True\)"):
    make_method(config)
  config = smoke_config("clip", folder, tmp_path, **{"data.caption_len": 40})
  with pytest.raises(ValueError, match=r"data.caption_len: expected an integer in \[3, text.max_len=16\], got 40"):
    make_method(config)


# -- losses -------------------------------------------------------------------------------------

def _embeddings(n=16, d=8, seed=0):
  rng = np.random.default_rng(seed)
  image, text = rng.normal(size=(n, d)), rng.normal(size=(n, d))
  text[:4] = image[:4] + 0.3 * text[:4]  # a few matching pairs, so positives and negatives both matter
  return image.astype(np.float32), text.astype(np.float32)


def _siglip_numpy(image, text, t, b):
  """The paper's Algorithm 1, element by element in float64."""
  x = image / np.linalg.norm(image, axis=1, keepdims=True)
  y = text / np.linalg.norm(text, axis=1, keepdims=True)
  n, total = len(x), 0.0
  for i in range(n):
    for j in range(n):
      z = 1.0 if i == j else -1.0
      total += np.log(1.0 / (1.0 + np.exp(-z * (t * x[i] @ y[j] + b))))
  return -total / n


def _siglip_big_vision(zimg, ztxt, t, b):
  """big_vision's `trainers/proj/image_text/siglip.py` loss on normalized embeddings."""
  logits = jnp.dot(zimg, ztxt.T) * t + b
  m1_diag1 = -jnp.ones_like(logits) + 2 * jnp.eye(zimg.shape[0])
  return jnp.mean(-jnp.sum(jax.nn.log_sigmoid(m1_diag1 * logits), axis=-1))


def test_siglip_loss_is_the_papers_formula_and_big_visions():
  image, text = _embeddings()
  loss, aux = siglip_loss(jnp.asarray(image), jnp.asarray(text), scale=10.0, bias=-10.0)
  np.testing.assert_allclose(float(loss), _siglip_numpy(image.astype(np.float64), text.astype(np.float64), 10.0, -10.0),
                             rtol=1e-5)
  x = image / np.linalg.norm(image, axis=1, keepdims=True)
  y = text / np.linalg.norm(text, axis=1, keepdims=True)
  np.testing.assert_allclose(float(loss), float(_siglip_big_vision(jnp.asarray(x), jnp.asarray(y), 10.0, -10.0)),
                             rtol=1e-5)
  np.testing.assert_allclose(float(aux["accuracy"]), np.mean(np.argmax(x @ y.T, axis=1) == np.arange(16)))


@pytest.mark.parametrize("shape", [{"data": 1}, {"data": 8}, {"data": 4, "model": 2}])
def test_chunked_siglip_equals_the_dense_loss_and_gradients(devices, shape):
  image, text = _embeddings(n=32)
  n = int(np.prod(list(shape.values())))
  mesh = Mesh(np.asarray(devices[:n]).reshape(list(shape.values())), tuple(shape))
  sharding = NamedSharding(mesh, P(mesh.axis_names))
  image, text = jax.device_put(jnp.asarray(image), sharding), jax.device_put(jnp.asarray(text), sharding)

  def dense(x, y, t, b):
    return siglip_loss(x, y, scale=t, bias=b)

  def chunked(x, y, t, b):
    return siglip_loss_chunked(x, y, scale=t, bias=b, mesh=mesh)

  args = (image, text, jnp.float32(7.0), jnp.float32(-4.0))
  (l1, a1), g1 = jax.jit(jax.value_and_grad(dense, argnums=(0, 1, 2, 3), has_aux=True))(*args)
  (l2, a2), g2 = jax.jit(jax.value_and_grad(chunked, argnums=(0, 1, 2, 3), has_aux=True))(*args)
  np.testing.assert_allclose(float(l2), float(l1), rtol=1e-5)
  assert float(a2["accuracy"]) == float(a1["accuracy"])
  np.testing.assert_allclose(float(a2["positive_logit"]), float(a1["positive_logit"]), rtol=1e-5)
  for d, c in zip(g1, g2):  # the same sums in another order: compared in norm (helpers.assert_close_in_norm)
    d, c = np.asarray(d, np.float64), np.asarray(c, np.float64)
    assert np.linalg.norm(c - d) <= 1e-5 * np.linalg.norm(d)


# -- retrieval ----------------------------------------------------------------------------------

def test_recall_at_k_on_a_hand_built_similarity_matrix():
  # 3 images, 5 texts; texts 0, 1 describe image 0, text 2 image 1, texts 3, 4 image 2
  text_image = np.array([0, 0, 1, 2, 2])
  sim = np.array([[0.1, 0.9, 0.8, 0.0, 0.2],    # image 0: own text 1 ranks first
                  [0.5, 0.6, 0.4, 0.7, 0.1],    # image 1: own text 2 ranks 4th
                  [0.3, 0.2, 0.9, 0.1, 0.8]])   # image 2: own text 4 ranks 2nd
  out = retrieval_recall(sim, text_image, ks=(1, 2, 4))
  assert (out["i2t_r@1"], out["i2t_r@2"], out["i2t_r@4"]) == (1 / 3, 2 / 3, 1.0)
  # each text's zero-based rank among the images (ties against it): its column's scores at
  # least its own image's, minus one: t0 2 (0.5, 0.3 >= 0.1), t1 0, t2 2 (0.8, 0.9 >= 0.4), t3 1, t4 0
  ranks = [2, 0, 2, 1, 0]
  for k in (1, 2, 4):
    assert out[f"t2i_r@{k}"] == np.mean(np.array(ranks) < k)
  with pytest.raises(ValueError, match=r"text_image: expected \[5\]"):
    retrieval_recall(sim, text_image[:4])


# -- smoke runs ---------------------------------------------------------------------------------

def test_clip_and_siglip_train_and_evaluate_with_a_locked_tower_from_another_run(tmp_path):
  from sslax.train.loop import train
  from sslax.train.pretrained import latest_weights

  folder = write_caption_folder(tmp_path / "data")
  labelled = write_image_tar(str(tmp_path / "labelled.tar.gz"), num_per_class=8, classes=("blue", "green", "red"))
  probe = {"source": "image_folder", "paths": {"train": labelled, "test": labelled}, "train_split": "train",
           "eval_split": "test", "on_bad_example": "error", "data_dir": str(tmp_path / "tfds")}
  overrides = {"eval.probe_data": probe, "eval.zeroshot": {"data": probe, "prompt": "a {} dog", "prompts": ("a {}",),
                                                          "class_names": (), "max_test": 0}}
  clip = train(smoke_config("clip", folder, tmp_path / "tfds", **overrides), str(tmp_path / "clip"), progress=False)
  report = clip.report
  for key in ("i2t_r@1", "t2i_r@10", "retrieval_mean", "zeroshot_top1", "zeroshot_ensemble_top1", "knn_top1"):
    assert 0.0 <= report[key] <= 1.0, key
  assert report["zeroshot_chance"] == pytest.approx(1 / 3)
  from sslax.train.pretrained import init_from

  with pytest.raises(ValueError, match=r"train.init_from: the checkpoint of .*clip \(step 3\) has no 'encoder' "
                                       r"\(at 'encoder', expected one of \['image_proj', 'image_tower', 'log_scale'"):
    init_from(clip.state, [("image_tower", str(tmp_path / "clip"), "encoder")])
  with pytest.raises(ValueError, match=r"train.init_from: expected a run with a valid checkpoint under .*nothing"):
    init_from(clip.state, [("image_tower", str(tmp_path / "nothing"), "")])
  # SigLIP (chunked over the 8 devices), its image tower from the CLIP run, locked
  siglip = train(smoke_config("siglip", folder, tmp_path / "tfds", **overrides, **{
      "train.init_from": (("image_tower", str(tmp_path / "clip"), "image_tower"),),
      "method.lock_image": True, "optim.freeze": ("image_tower",)}), str(tmp_path / "siglip"), progress=False)
  assert siglip.report["steps"] == 3 and 0.0 <= siglip.report["i2t_r@1"] <= 1.0
  _, clip_params, clip_stats = latest_weights(str(tmp_path / "clip"))
  tower = jax.device_get(siglip.state.params["image_tower"])
  for a, b in zip(jax.tree.leaves(tower), jax.tree.leaves(clip_params["image_tower"]), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # copied in and never moved
  stats = jax.device_get(siglip.state.batch_stats["image_tower"])
  for a, b in zip(jax.tree.leaves(stats), jax.tree.leaves(clip_stats["image_tower"]), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # evaluation mode: statistics kept
  text = jax.device_get(siglip.state.params["text_tower"])
  fresh = [np.asarray(x) for x in jax.tree.leaves(clip_params["text_tower"])]
  assert any(not np.array_equal(np.asarray(a), b) for a, b in zip(jax.tree.leaves(text), fresh))
