"""DeepCluster: PCA-whitening against NumPy, the empty-cluster split, and `refresh` (labels from the
teacher snapshot, the top layer re-initialized with its optimizer moments, NMI logged)."""
import jax
import jax.numpy as jnp
import numpy as np

from helpers import SMOKE, method_digits_config
from sslax.kmeans import kmeans, split_empty
from sslax.methods.deepcluster import pca_whitening, whitened


def test_pca_whitening_against_numpy():
  rng = np.random.default_rng(0)
  x = (rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) + 3.0).astype(np.float32)
  mean, proj = pca_whitening(jnp.asarray(x), 3)
  z = (x - np.asarray(mean)) @ np.asarray(proj)
  np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(3), atol=1e-3)  # whitened
  # the same subspace as NumPy's top 3 principal directions
  centred = x - x.mean(0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  basis = np.asarray(proj) / np.linalg.norm(np.asarray(proj), axis=0)
  np.testing.assert_allclose(np.abs(basis.T @ vt[:3].T), np.eye(3), atol=1e-3)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(whitened(jnp.asarray(x), mean, proj)), axis=1), 1.0,
                             rtol=1e-5)


def test_empty_clusters_split_the_largest():
  centroids = jnp.array([[0.0, 0.0], [5.0, 5.0], [9.0, 9.0], [1.0, 2.0]])
  counts = jnp.array([3.0, 0.0, 10.0, 0.0])
  out = np.asarray(split_empty(jax.random.key(0), centroids, counts, eps=1e-2))
  np.testing.assert_array_equal(out[[0, 2]], np.asarray(centroids)[[0, 2]])
  for j in (1, 3):  # next to the largest cluster's centroid, not on it
    np.testing.assert_allclose(out[j], [9.0, 9.0], atol=0.1)
    assert not np.array_equal(out[j], [9.0, 9.0])
  # three well-separated blobs of very different sizes, 6 clusters: with the split every cluster
  # ends up used; without it, k-means may leave clusters empty
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(size=(400, 2)) * 0.1, rng.normal(size=(20, 2)) * 0.1 + 8,
                      rng.normal(size=(20, 2)) * 0.1 - 8]).astype(np.float32)
  c, _ = kmeans(jax.random.key(3), jnp.asarray(x), 6, iters=30, split_empty_clusters=True)
  d = ((x[:, None] - np.asarray(c)[None]) ** 2).sum(-1)
  assert len(np.unique(d.argmin(1))) == 6


def test_refresh_labels_reinitializes_the_top_and_logs_nmi(tmp_path):
  from sslax.train.loop import train
  from sslax.train.metrics import read_metrics

  config = method_digits_config("deepcluster", **SMOKE)
  result = train(config, str(tmp_path), progress=False)
  state = result.state.method_state
  records = [r for r in read_metrics(str(tmp_path)) if "loss" in r]
  # refreshed before steps 0 and 2: the second clustering is compared with the first
  assert 0 < records[-1]["clusters/nmi_previous"] <= 1 and 0 < records[-1]["clusters/nmi_labels"] <= 1
  assert int(state["clusters_used"]) == config.method.num_clusters  # empty clusters were split
  used = np.asarray(state["previous"])
  assert (used[used >= 0] < config.method.num_clusters).all() and (used >= 0).sum() > 0
  # the labels a step computes from the teacher are the assignments refresh stored for those images
  from sslax.data import eval_batches, get_source
  from sslax.kmeans import assign
  from sslax.methods import make_method
  from sslax.models.functional import merge_model

  method = make_method(config)
  teacher = merge_model(result.state.graphdef, state["teacher"]["params"], state["teacher"]["batch_stats"])
  batch = next(eval_batches(get_source(config.data, config.data.train_split), batch_size=64,
                            transform=method.inputs.transform()))
  labels = np.asarray(assign(method.teacher_codes(teacher, jnp.asarray(batch["image"]), state), state["centroids"]))
  agree = np.mean(labels == used[:64])
  assert agree > 0.95, agree  # equal up to float ties between near-equidistant centroids
