"""Small shared builders for tests: generated data, smoke configs."""
from __future__ import annotations

import io
import os
import tarfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_smoke_config(**overrides):
  from sslax.quickstart import digits_config

  config = digits_config("smoke")
  for key, value in overrides.items():
    section, name = key.split(".")
    config[section][name] = value
  return config


def set_overrides(config, overrides: dict) -> None:
  """config["a.b.c"] = value for each dotted key of `overrides` (an unlocked config)."""
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
      node = node[part]
    node[leaf] = value


def log_softmax(x):
  """NumPy log-softmax over the last axis, the formula the loss tests write out."""
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def runs(row) -> list[int]:
  """Lengths of the runs of True in a 1-D bool sequence (mask spans)."""
  out, n = [], 0
  for v in list(row) + [False]:
    if v:
      n += 1
    elif n:
      out.append(n)
      n = 0
  return out


def digits_batch(n=64, seed=0):
  from sslax.data import digits_arrays

  images, labels = digits_arrays("train")
  idx = np.random.default_rng(seed).permutation(len(images))[:n]
  return {"image": images[idx], "label": labels[idx]}


def png_bytes(array, mode=None) -> bytes:
  from PIL import Image

  buf = io.BytesIO()
  Image.fromarray(array, mode).save(buf, format="PNG")
  return buf.getvalue()


def bad_image_files(size=(16, 16)) -> dict[str, bytes]:
  """`<class>/<name>` -> bytes of files an image loader must reject: random bytes, a PNG cut
  in half, and an image of another size."""
  good = png_bytes(np.full((*size, 3), 128, np.uint8))
  return {"cat/corrupt.png": bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)),
          "dog/truncated.png": good[: len(good) // 2],
          "frog/wrong_size.png": png_bytes(np.zeros((size[0] + 3, size[1], 3), np.uint8))}


def write_image_tar(path, num_per_class=12, classes=("cat", "dog", "frog"), size=(16, 16), seed=0,
                    extra_files=None):
  """A generated `<class>/<i>.png` tar whose classes differ in mean colour (learnable), plus
  `extra_files` (`<class>/<name>` -> bytes)."""
  from PIL import Image

  rng = np.random.default_rng(seed)
  with tarfile.open(path, "w:gz") as tar:
    for ci, cls in enumerate(classes):
      for i in range(num_per_class):
        base = np.zeros((*size, 3), np.float32)
        base[..., ci % 3] = 180
        img = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        info = tarfile.TarInfo(f"./{cls}/{i:04d}.png")
        info.size = len(buf.getvalue())
        tar.addfile(info, io.BytesIO(buf.getvalue()))
    for name, data in (extra_files or {}).items():
      info = tarfile.TarInfo(f"./{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


METHOD_NAMES = ("simclr", "byol", "simsiam", "moco", "dino", "vicreg", "barlow_twins", "rotation", "mae", "simmim",
                "context_encoder", "pixelcnn", "swav", "jigsaw",
                "relative_position", "triplet",
                "colorization", "cmc", "deepcluster")
# Overrides of `method_digits_config` for the smoke runs of tests/test_methods.py. Tests that build
# one step with these and train()'s optimizer compile the same program as those runs (shared
# through the persistent compilation cache); none of them changes the step.
SMOKE = {"train.num_steps": 4, "train.log_every": 2, "eval.linear_probe": True}


def method_digits_config(name, **overrides):
  """`experiments/<name>_cifar10.py:smoke` with its data swapped for the bundled 8x8 digits."""
  from sslax.config import load_config

  config = load_config(os.path.join(ROOT, "experiments", f"{name}_cifar10.py:smoke"))
  config.unlock()
  config.data.source = "digits"
  config.model.in_channels, config.model.width = 1, 8
  if "augment" in config:  # PixelCNN reads the pixels as they are
    config.augment.crop_size, config.augment.crop_scale = (8, 8), (0.35, 1.0)
    config.augment.flip_prob, config.augment.saturation, config.augment.hue = 0.0, 0.0, 0.0
    config.augment.grayscale_prob = 0.0
    config.augment.mean, config.augment.std = (0.3,), (0.4,)
  config.train.batch_size, config.train.num_steps, config.train.checkpoint_every = 64, 6, 3
  config.eval.layer_probe = False  # per-stage probes are smoke-tested by the methods that always list them
  if name in ("dino", "swav"):
    config.method.local_crop_size = (4, 4)
  if name == "jigsaw":  # 2x2 cells of 4 px
    config.method.tile_size = 3
  if name == "relative_position":  # 3x3 cells of 2 px
    config.method.patch_size = 2
  if name == "cmc":  # gray digits read as gray RGB: an empty ab view, but every part runs
    config.method.image_channels = 1
    config.augment.mean, config.augment.std = (0.0,), (1.0,)
  if name == "colorization":  # gray digits read as gray RGB, the encoder on their L
    config.method.image_channels, config.method.stage = 1, "stage2"
    config.augment.mean, config.augment.std = (0.0,), (1.0,)
  if name == "moco":
    config.method.queue_size = 128
  if config.model.name.startswith("vit"):  # 8x8 digits: a 4x4 grid of 2x2 patches
    config.model.image_size, config.model.patch_size = 8, 2
  if name == "simmim":
    config.method.mask_patch_size = 4  # cells of 2x2 patches
  set_overrides(config, overrides)
  config.lock()
  return config


def wav_bytes(samples: np.ndarray, rate: int = 8000) -> bytes:
  import scipy.io.wavfile

  buf = io.BytesIO()
  scipy.io.wavfile.write(buf, rate, samples)
  return buf.getvalue()


def write_wav_folder(path, *, digits=(0, 1, 2), speakers=("ann", "bob"), per_pair=8, rate=8000, seed=0,
                     extra_files=None):
  """A generated FSDD-like folder `{digit}_{speaker}_{index}.wav` (int16): each digit is a tone
  sweep of its own pitch, each speaker shifts pitch and loudness, lengths vary (0.25-0.4 s)."""
  rng = np.random.default_rng(seed)
  os.makedirs(path, exist_ok=True)
  for d in digits:
    for s, speaker in enumerate(speakers):
      for i in range(per_pair):
        n = int(rate * rng.uniform(0.25, 0.4))
        t = np.arange(n) / rate
        f0 = 300 + 250 * d + 60 * s
        wave = np.sin(2 * np.pi * (f0 * t + 200 * d * t**2)) * (0.3 + 0.2 * s)
        wave = wave + 0.05 * rng.normal(size=n)
        pcm = np.clip(wave * 32767, -32768, 32767).astype(np.int16)
        with open(os.path.join(path, f"{d}_{speaker}_{i}.wav"), "wb") as f:
          f.write(wav_bytes(pcm, rate))
  for name, data in (extra_files or {}).items():
    with open(os.path.join(path, name), "wb") as f:
      f.write(data)
  return str(path)


def bad_wav_files() -> dict[str, bytes]:
  """FSDD-named files a wav loader must reject: random bytes, a wav cut short, an empty recording."""
  good = wav_bytes(np.zeros(4000, np.int16))
  return {"1_ann_90.wav": bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)),
          "2_bob_91.wav": good[:30],
          "0_ann_92.wav": wav_bytes(np.zeros(0, np.int16))}


def wav2vec2_smoke_config(folder, data_dir, **overrides):
  """`experiments/wav2vec2_fsdd.py:smoke` on a generated wav folder."""
  return speech_smoke_config("wav2vec2", folder, data_dir, **overrides)


def speech_smoke_config(method, folder, data_dir, variant="smoke", **overrides):
  """`experiments/<method>_fsdd.py:<variant>` on a generated wav folder."""
  from sslax.config import load_config

  config = load_config(os.path.join(ROOT, "experiments", f"{method}_fsdd.py:{variant}"))
  config.unlock()
  config.data.paths = {"train": str(folder), "test": str(folder)}
  config.data.data_dir = str(data_dir)
  set_overrides(config, overrides)
  config.lock()
  return config


_POSITIVE = ("good", "great", "fine", "lovely", "warm", "bright", "funny", "clever")
_NEGATIVE = ("bad", "dull", "awful", "cold", "grim", "boring", "weak", "silly")
_FILLER = ("the", "film", "is", "a", "story", "with", "its", "cast", "and", "plot", "very", "quite", "of", "this")


def write_text_corpus(folder, *, sentences=240, seed=0):
  """A generated corpus: `lines.txt` (plain text) and `labelled.tsv` (`label<TAB>sentence`, label 1
  when the sentence has positive words), sentences of 4-14 words. Returns (lines path, tsv path)."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  rows = []
  for _ in range(sentences):
    label = int(rng.integers(2))
    words = list(rng.choice(_FILLER, int(rng.integers(2, 11))))
    for _ in range(int(rng.integers(1, 4))):
      words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(_POSITIVE if label else _NEGATIVE)))
    rows.append((label, " ".join(words)))
  lines, tsv = os.path.join(folder, "lines.txt"), os.path.join(folder, "labelled.tsv")
  if os.path.exists(lines) and os.path.exists(tsv):  # kept: prepared data is keyed by modification time
    return lines, tsv
  with open(lines, "w") as f:
    f.write("\n".join(s for _, s in rows) + "\n")
  with open(tsv, "w") as f:
    f.write("label\tsentence\n" + "".join(f"{label}\t{s}\n" for label, s in rows))
  return lines, tsv


def text_smoke_config(name, folder, data_dir, **overrides):
  """`experiments/<name>_text.py:smoke` on a generated corpus (`write_text_corpus`): BERT and the
  encoder-decoders on the TSV's sentences with the labelled TSV as probe data, GPT and XLNet on
  the plain text."""
  from sslax.config import load_config

  lines, tsv = write_text_corpus(folder)
  config = load_config(os.path.join(ROOT, "experiments", f"{name}_text.py:smoke"))
  config.unlock()
  sentences = name not in ("gpt", "xlnet")  # the causal and permutation LMs read plain text
  config.data.paths = {"train": tsv if sentences else lines, "test": tsv if sentences else lines}
  config.data.data_dir = str(data_dir)
  if sentences:
    config.eval.probe_data.paths = {"train": tsv, "test": tsv}
  else:
    config.eval.fewshot.data.paths = {"train": tsv, "test": tsv}
  set_overrides(config, overrides)
  config.lock()
  return config


def write_conll_corpus(folder, *, sentences=160, seed=1):
  """A generated word-tagged corpus, `tags.conll` (`word<TAB>tag`, a blank line between sentences):
  the filler words of `write_text_corpus` tagged O, its positive words entities of one or two words
  (B-POS, I-POS), its negative words one-word entities B-NEG, entities apart. Returns its path."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, "tags.conll")
  if os.path.exists(path):
    return path

  def fillers(low):
    return [(str(w), "O") for w in rng.choice(_FILLER, int(rng.integers(low, 4)))]

  out = []
  for _ in range(sentences):
    words = []
    for _ in range(int(rng.integers(1, 3))):  # entities apart (a filler between): the tags follow from the words
      words += fillers(1)
      if rng.random() < 0.5:
        words += [(str(w), t) for w, t in zip(rng.choice(_POSITIVE, 2), ("B-POS", "I-POS"))][: int(rng.integers(1, 3))]
      else:
        words.append((str(rng.choice(_NEGATIVE)), "B-NEG"))
    words += fillers(0)
    out.append("".join(f"{w}\t{t}\n" for w, t in words))
  with open(path, "w") as f:
    f.write("-DOCSTART-\tO\n\n" + "\n".join(out))
  return path


def leaf_names(tree) -> list[str]:
  """'a/b/c' paths of a pytree's leaves, in `jax.tree.leaves` order (`sslax.train.mesh.leaf_path`)."""
  import jax

  from sslax.train.mesh import leaf_path

  return [leaf_path(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def assert_close_in_norm(actual, desired, rtol: float, what: str = "", *, scale=None, ulps: float = 0.0) -> None:
  """Each leaf: ||actual - desired||_2 <= rtol * ||scale||_2 + ulps * eps32 * ||desired||_2, norms
  in float64; `scale` defaults to `desired`.

  A claim that two computations are the same arithmetic in another order (im2col vs XLA's
  convolution, FSDP vs data parallelism) is a claim about whole tensors: float32 rounding moves
  every element by a few ulps of the terms it sums, so an element near zero can differ by 100%
  while the tensor differs by 1e-6 of its norm. An elementwise rtol fails on those elements on
  one CPU and not another; the norm does not. `scale` (e.g. what a step changed) and `ulps` (the
  rounding of the stored values themselves, eps32 = 2^-23) serve values that one step moves by
  far less than their size. A leaf whose bound is 0 must be equal."""
  import jax

  scale = desired if scale is None else scale
  pairs = list(zip(leaf_names(desired), jax.tree.leaves(actual), jax.tree.leaves(desired), jax.tree.leaves(scale),
                   strict=True))
  assert pairs, f"{what}: no leaves to compare"
  worst = []
  for name, a, d, s in pairs:
    a, d, s = (np.asarray(v, np.float64) for v in (a, d, s))
    assert a.shape == d.shape, f"{what}{name}: shape {a.shape} != {d.shape}"
    err = float(np.linalg.norm(a - d))
    bound = rtol * float(np.linalg.norm(s)) + ulps * float(np.finfo(np.float32).eps) * float(np.linalg.norm(d))
    if not err <= bound:
      worst.append(f"{what}{name}: ||a - d|| = {err:.3g} > {bound:.3g} (||scale|| = {np.linalg.norm(s):.3g})")
  assert not worst, "\n".join(worst)


def assert_same_step_on_1_and_8_devices(method_fn, batch, devices, *, steps: int = 1, rtol: float = 1e-5):
  """`steps` SGD(1.0) train steps of `method_fn()` on `batch` on one device and on all 8: the same
  loss and the same parameter updates (to rtol, in each leaf's scale). Returns each mesh's last
  metrics and the parameter change on one device."""
  import jax
  import optax

  from sslax.data import to_global
  from sslax.train import create_train_state, make_mesh, make_train_step, state_sharding

  results = []
  for mesh in (make_mesh({"data": 1}, devices[:1]), make_mesh({"data": -1}, devices)):
    method = method_fn()
    tx = optax.sgd(1.0)
    state = jax.device_put(create_train_state(method, tx, seed=0), state_sharding(mesh))
    before = jax.device_get(state.params)
    step = make_train_step(method, tx, mesh)
    for _ in range(steps):
      state, metrics = step(state, to_global(batch, mesh))
    results.append((metrics, jax.tree.map(lambda x, y: x - y, before, jax.device_get(state.params))))
  (m1, g1), (m8, g8) = results
  np.testing.assert_allclose(float(m1["loss"]), float(m8["loss"]), rtol=rtol)
  assert np.isfinite(float(m1["loss"]))
  for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g8)):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * max(1.0, float(np.abs(y).max())))
  return m1, m8, g1
