"""HuBERT: the loss against NumPy, k-means on device (1 vs 8 devices, against Lloyd in NumPy), cluster
purity, targets restored exactly on resume, and the second iteration on the first's network."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import log_softmax, speech_smoke_config, write_wav_folder
from sslax.kmeans import assign, kmeans, label_stats, purity
from sslax.losses.clustering import hubert_loss


def test_hubert_loss_matches_numpy():
  rng = np.random.default_rng(0)
  proj = rng.normal(size=(2, 6, 4)).astype(np.float32)
  embs = rng.normal(size=(5, 4)).astype(np.float32)
  targets = rng.integers(0, 5, (2, 6))
  weights = rng.random((2, 6)) < 0.5
  loss, aux = hubert_loss(jnp.asarray(proj), jnp.asarray(embs), jnp.asarray(targets), jnp.asarray(weights),
                          temperature=0.1)
  cos = (proj / np.linalg.norm(proj, axis=-1, keepdims=True)) @ (embs / np.linalg.norm(embs, axis=-1, keepdims=True)).T
  logp = log_softmax(cos / 0.1)
  nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(float(loss), nll[weights].mean(), rtol=1e-5)
  np.testing.assert_allclose(float(aux["accuracy"]), (cos.argmax(-1) == targets)[weights].mean(), rtol=1e-6)


def _lloyd_numpy(x, centroids, iters):
  for _ in range(iters):
    a = ((x[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    centroids = np.stack([x[a == k].mean(0) if (a == k).any() else centroids[k] for k in range(len(centroids))])
  return centroids


def test_kmeans_on_1_and_8_devices_and_against_lloyd_in_numpy(devices):
  from jax.sharding import NamedSharding, PartitionSpec as P

  from sslax.train import make_mesh

  rng = np.random.default_rng(0)
  centres = rng.normal(size=(6, 3)) * 5
  x = (centres[rng.integers(0, 6, 800)] + rng.normal(size=(800, 3))).astype(np.float32)
  key = jax.random.key(0)
  seeds, _ = kmeans(key, jnp.asarray(x), 6, iters=0)
  assert len({tuple(np.round(s, 5)) for s in np.asarray(seeds)}) == 6  # k-means++ picks 6 distinct points
  ref = _lloyd_numpy(x.astype(np.float64), np.asarray(seeds, np.float64), 20)
  one, inertia = kmeans(key, jnp.asarray(x), 6, iters=20)
  np.testing.assert_allclose(np.asarray(one), ref, atol=1e-4)
  mesh = make_mesh({"data": -1}, devices)
  sharded = jax.device_put(jnp.asarray(x), NamedSharding(mesh, P("data")))
  eight, inertia8 = kmeans(key, sharded, 6, iters=20)
  np.testing.assert_allclose(np.asarray(eight), np.asarray(one), atol=1e-5)
  np.testing.assert_array_equal(np.asarray(assign(sharded, eight)), np.asarray(assign(jnp.asarray(x), one)))
  np.testing.assert_allclose(float(inertia8), float(inertia), rtol=1e-5)
  # padding rows of weight 0 move nothing
  padded = np.concatenate([x, np.full((8, 3), 1e3, np.float32)])
  w = np.concatenate([np.ones(800), np.zeros(8)])
  _, inertia_w = kmeans(key, jnp.asarray(padded), 6, iters=20, weights=jnp.asarray(w))
  assert float(inertia_w) < 3 * float(inertia)


def test_purity():
  assert purity([0, 0, 1, 1], [3, 3, 1, 2]) == 0.75
  assert purity([0, 1, 2], [0, 0, 0]) == 1.0
  # HuBERT's section IV-E measures written out on a random table
  rng = np.random.default_rng(0)
  z, y = rng.integers(0, 5, 400), rng.integers(0, 3, 400)
  joint = np.zeros((5, 3))
  np.add.at(joint, (z, y), 1 / 400)
  pz, py = joint.sum(1), joint.sum(0)
  mutual = sum(joint[i, j] * np.log(joint[i, j] / (pz[i] * py[j])) for i in range(5) for j in range(3) if joint[i, j])
  s = label_stats(z, y, 5)
  np.testing.assert_allclose(s["pnmi"], mutual / -np.sum(py * np.log(py)), rtol=1e-12)
  np.testing.assert_allclose(s["cluster_purity"], sum(joint[:, j].max() for j in range(3)), rtol=1e-12)
  assert label_stats([0, 1, 2, 0], [0, 1, 2, 0])["pnmi"] == 1.0


def test_targets_restored_exactly_on_resume(tmp_path):
  from sslax.train.loop import train
  from sslax.train.metrics import read_metrics

  folder = write_wav_folder(tmp_path / "wav")
  config = speech_smoke_config("hubert", folder, tmp_path / "tfds", **{"train.num_steps": 4,
                                                                      "train.checkpoint_every": 2})
  straight = train(config, str(tmp_path / "straight"), progress=False)
  assert train(config, str(tmp_path / "resumed"), stop_at=2, progress=False) is None
  resumed = train(config, str(tmp_path / "resumed"), progress=False)
  losses = lambda d: {r["step"]: (r["loss"], r["accuracy"]) for r in read_metrics(str(d)) if "loss" in r}
  assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
  centroids = np.asarray(resumed.state.method_state["centroids"])
  np.testing.assert_array_equal(centroids, np.asarray(straight.state.method_state["centroids"]))
  assert np.abs(centroids).sum() > 0  # clustered before step 0, not the zeros of init_state
  # generated digits are tone sweeps of their own pitch: clusters of their MFCC frames follow the
  # digit far above the 1/3 of a constant assignment; measured 0.47 (8 clusters, 5 Lloyd steps)
  assert 0.4 < float(resumed.state.method_state["digit_purity"]) <= 1.0


def test_second_iteration_clusters_the_teacher_layer(tmp_path):
  """Iteration 2 on a 3-step iteration 1: the teacher in the method state is the first run's
  network, the centroids live in its layer's space, and a resumed run has exactly the targets
  (and losses) of a straight one without reading the teacher's workdir again."""
  import shutil

  from sslax.optim.masks import path_name
  from sslax.train.loop import train
  from sslax.train.metrics import read_metrics
  from sslax.train.pretrained import latest_weights

  folder = write_wav_folder(tmp_path / "wav")
  first = speech_smoke_config("hubert", folder, tmp_path / "tfds")
  train(first, str(tmp_path / "first"), progress=False)
  config = speech_smoke_config("hubert", folder, tmp_path / "tfds", "iteration2_smoke",
                               **{"train.init_from": (("method_state/teacher", str(tmp_path / "first"), ""),),
                                  "train.num_steps": 4, "train.checkpoint_every": 2})
  straight = train(config, str(tmp_path / "straight"), progress=False)
  assert train(config, str(tmp_path / "resumed"), stop_at=2, progress=False) is None
  shutil.move(tmp_path / "first", tmp_path / "gone")  # resume restores the teacher from its own checkpoint
  resumed = train(config, str(tmp_path / "resumed"), progress=False)
  losses = lambda d: {r["step"]: (r["loss"], r["accuracy"]) for r in read_metrics(str(d)) if "loss" in r}
  assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
  state = resumed.state.method_state
  assert state["centroids"].shape == (8, config.model.dim)
  _, params, _ = latest_weights(str(tmp_path / "gone"))
  by_name = lambda tree: {path_name(p): v for p, v in jax.tree_util.tree_leaves_with_path(jax.device_get(tree))}
  teacher, first_params = by_name(state["teacher"]), by_name(params)
  assert teacher.keys() == first_params.keys()
  for name, value in first_params.items():
    np.testing.assert_array_equal(teacher[name], value, err_msg=name)
  assert 0 < float(state["digit_purity"]) <= 1 and 0 <= float(state["digit_pnmi"]) <= 1
  from sslax.methods import make_method

  with pytest.raises(ValueError, match="train.init_from: expected an entry"):
    make_method(speech_smoke_config("hubert", folder, tmp_path / "tfds", "iteration2_smoke", **{"train.init_from": ()}))
