"""DeepCluster (Caron et al., ECCV 2018) through the shared train step and the `refresh` hook.

Every `method.refresh_every` steps (and before step 0, on the network at
random init, as the paper's first epoch) `refresh`:

1. snapshots the network into the method state ("teacher", frozen);
2. embeds the training images (evaluation view: no augmentation, evaluation
   mode) with it, PCA-reduces to `method.pca_dim` with whitening and
   l2-normalizes (faiss' `PCAMatrix(eigen_power=-0.5)` of the reference);
3. runs k-means on device (`sslax.kmeans`, `method.num_clusters`), empty
   clusters split as the reference does (`split_empty`);
4. re-initializes the top layer ("top") and zeroes its optimizer moments,
   as the reference rebuilds its top layer and that layer's optimizer;
5. logs the NMI of the assignment with the previous one and with the true
   labels, and per-cluster loss weights 1 / size (the loss-reweighting form of
   the reference's uniform sampling over clusters).

Each step labels its images with the teacher: the nearest centroid of the
whitened teacher features of the raw image, exactly the label `refresh`
computed for it, so the pseudo-labels need no example index in the batch and
a resumed run has exactly its labels (they are a function of the
checkpointed teacher, PCA and centroids). The price is one frozen forward
pass per step. The trained network sees the augmented view and is scored by
weighted cross-entropy of its top layer against those labels. Departures:
no Sobel filter in front of the encoder (the reference's against colour
shortcuts; our augmentation's colour jitter and grayscale do that job), and
the top layer is one linear map on the pooled encoder features (the
reference's AlexNet / VGG classifier MLP has no ResNet counterpart).
"""
from __future__ import annotations

import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.metrics import normalized_mutual_info_score

from sslax.augment import augment_batch, eval_transform
from sslax.config import check_config_value, is_positive_int
from sslax.data import eval_batches
from sslax.data.modality import Images
from sslax.eval import KNN, LinearProbe
from sslax.eval.clusters import ClusterNMI
from sslax.eval.collapse import collapse_metrics
from sslax.eval.layer_probe import LayerProbe
from sslax.kmeans import assign, kmeans
from sslax.losses import l2_normalize
from sslax.methods.base import Method, MethodCard, register
from sslax.methods.two_view import image_inputs, resnet_stage_features
from sslax.models import build_encoder
from sslax.models.functional import copy_by_path, merge_model, split_model
from sslax.optim.masks import path_name

log = logging.getLogger("sslax")


def pca_whitening(x: jax.Array, dim: int, eps: float = 1e-5) -> tuple[jax.Array, jax.Array]:
  """(mean [D], projection [D, dim]) such that `(x - mean) @ projection` has the top `dim`
  principal components of x [N, D], each scaled to unit variance (PCA with whitening)."""
  x = x.astype(jnp.float32)
  mean = jnp.mean(x, axis=0)
  centred = x - mean
  cov = centred.T @ centred / x.shape[0]
  eigvals, eigvecs = jnp.linalg.eigh(cov)  # ascending
  top = eigvecs[:, ::-1][:, :dim]
  return mean, top / jnp.sqrt(jnp.maximum(eigvals[::-1][:dim], 0.0) + eps)[None, :]


def whitened(features: jax.Array, mean: jax.Array, projection: jax.Array) -> jax.Array:
  """l2-normalized PCA-whitened features [B, dim]: what the k-means and the labels read."""
  return l2_normalize((features.astype(jnp.float32) - mean) @ projection)


class DeepClusterNet(nnx.Module):
  """Encoder and the re-initialized top layer: `(logits [B, K], features)`."""

  def __init__(self, model_config, num_clusters: int, *, rngs: nnx.Rngs):
    self.encoder = build_encoder(model_config, rngs)
    self.top = nnx.Linear(self.encoder.num_features, num_clusters, rngs=rngs)

  def encode(self, images: jax.Array, train: bool = False) -> jax.Array:
    return self.encoder(images, train=train)[0]

  def __call__(self, images: jax.Array, train: bool = True):
    h, features = self.encoder(images, train=train)
    return self.top(h), {**features, "embedding": h}


@register("deepcluster")
class DeepCluster(Method):
  """DeepCluster on the shared train step; see `experiments/deepcluster_cifar10.py`."""
  card = MethodCard(
      family="clustering",
      paper="Caron et al. 2018, [Deep Clustering for Unsupervised Learning of Visual Features]"
            "(https://arxiv.org/abs/1807.05520)",
      objective="cross-entropy of a re-initialized top layer against the k-means cluster of each image's "
                "PCA-whitened features, the clusters recomputed every `method.refresh_every` steps",
      loss="",
      reference="facebookresearch/deepcluster (`main.py`, `clustering.py`)",
      tests=("tests/test_methods.py::test_smoke_pretrain_then_probe",
             "tests/test_deepcluster.py::test_pca_whitening_against_numpy",
             "tests/test_deepcluster.py::test_empty_clusters_split_the_largest",
             "tests/test_deepcluster.py::test_refresh_labels_reinitializes_the_top_and_logs_nmi"),
      results=("Every method on CIFAR-10", "random init", "DeepCluster"))

  @property
  def inputs(self) -> Images:
    return image_inputs(self.config)

  def check_config(self):
    c = self.config
    check_config_value(c, "method.num_clusters", lambda v: is_positive_int(v) and v >= 2, "an integer >= 2")
    check_config_value(c, "method.pca_dim", is_positive_int, "a positive integer")
    check_config_value(c, "method.refresh_every", is_positive_int, "a positive number of steps")
    check_config_value(c, "method.kmeans_iters", is_positive_int, "a positive integer")
    check_config_value(c, "method.max_images", is_positive_int, "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> DeepClusterNet:
    return DeepClusterNet(self.config.model, self.config.method.num_clusters, rngs=rngs)

  def init_state(self, model, key):
    k = self.config.method.num_clusters
    d = min(self.config.method.pca_dim, model.encoder.num_features)
    _, params, stats = split_model(model)
    zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)  # noqa: E731
    # zeros until `refresh` clusters before step 0
    return {"teacher": {"params": zeros(params), "batch_stats": zeros(stats)},
            "pca_mean": jnp.zeros((model.encoder.num_features,), jnp.float32),
            "pca_projection": jnp.zeros((model.encoder.num_features, d), jnp.float32),
            "centroids": jnp.zeros((k, d), jnp.float32), "weights": jnp.ones((k,), jnp.float32),
            "nmi_previous": jnp.zeros((), jnp.float32), "nmi_labels": jnp.zeros((), jnp.float32),
            "clusters_used": jnp.zeros((), jnp.float32), "previous": jnp.full((self.config.method.max_images,), -1,
                                                                               jnp.int32)}

  @property
  def refresh_every(self) -> int:
    return int(self.config.method.refresh_every)

  def teacher_codes(self, teacher, images, method_state) -> jax.Array:
    """[B, dim] whitened, l2-normalized teacher features of the raw images' evaluation view."""
    h = teacher.encode(eval_transform(images, self.config.augment), train=False)
    return whitened(jax.lax.stop_gradient(h), method_state["pca_mean"], method_state["pca_projection"])

  def refresh(self, state, data, mesh, step: int):
    """Teacher snapshot, features of the training images, PCA-whitening, k-means, the top layer
    re-initialized (see the module docstring)."""
    if data.train is None:
      raise ValueError("method.name: 'deepcluster' clusters the training split, and the run has none")
    m = self.config.method
    teacher = merge_model(state.graphdef, state.params, state.batch_stats)
    embed = jax.jit(lambda images: teacher.encode(eval_transform(images, self.config.augment), train=False))
    feats, labels = [], []
    for batch in eval_batches(data.train, batch_size=500, transform=self.inputs.transform(("label",))):
      feats.append(np.asarray(embed(jnp.asarray(batch["image"]))))
      labels.append(batch["label"])
      if sum(len(f) for f in feats) >= m.max_images:
        break
    x = jnp.asarray(np.concatenate(feats)[: m.max_images])
    y = np.concatenate(labels)[: m.max_images]
    dim = state.method_state["centroids"].shape[1]
    mean, projection = pca_whitening(x, dim)
    codes = whitened(x, mean, projection)
    key = jax.random.fold_in(jax.random.key(self.config.seed), step)
    centroids, _ = kmeans(key, codes, m.num_clusters, m.kmeans_iters, split_empty_clusters=True)
    clusters = np.asarray(assign(codes, centroids))
    counts = np.bincount(clusters, minlength=m.num_clusters).astype(np.float64)
    weights = np.where(counts > 0, len(clusters) / (m.num_clusters * np.maximum(counts, 1)), 0.0)
    previous = np.asarray(state.method_state["previous"])[: len(clusters)]
    nmi_previous = normalized_mutual_info_score(previous, clusters) if previous[0] >= 0 else 0.0
    nmi_labels = normalized_mutual_info_score(y, clusters)
    log.info("deepcluster step %d: %d clusters of %d images (%d used), NMI with the labels %.4f, with the "
             "previous assignment %.4f", step, m.num_clusters, len(clusters), int((counts > 0).sum()), nmi_labels,
             nmi_previous)
    stored = np.full((m.max_images,), -1, np.int32)
    stored[: len(clusters)] = clusters
    method_state = {**state.method_state,
                    # copies: the train step donates the state's buffers, and one buffer donated twice crashes
                    "teacher": jax.tree.map(jnp.copy, {"params": state.params, "batch_stats": state.batch_stats}),
                    "pca_mean": mean, "pca_projection": projection, "centroids": centroids,
                    "weights": jnp.asarray(weights, jnp.float32), "previous": jnp.asarray(stored),
                    "nmi_previous": jnp.float32(nmi_previous), "nmi_labels": jnp.float32(nmi_labels),
                    "clusters_used": jnp.float32((counts > 0).sum())}
    # a fresh top layer, and no momentum of the old one (the reference builds a new top-layer optimizer)
    fresh = self.build_model(nnx.Rngs(params=jax.random.fold_in(key, 1)))
    params, _ = copy_by_path(state.params, {"top": nnx.to_pure_dict(split_model(fresh)[1])["top"]})
    is_top = re.compile(r"(^|/)top(/|$)")
    opt_state = jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.zeros_like(v) if is_top.search(path_name(p)) else v, state.opt_state)
    return state.replace(params=params, opt_state=opt_state, method_state=method_state)

  def loss(self, model, batch, method_state, key, step, target=None):
    teacher = merge_model(nnx.graphdef(model), method_state["teacher"]["params"],
                          method_state["teacher"]["batch_stats"])
    labels = assign(self.teacher_codes(teacher, batch["image"], method_state), method_state["centroids"])
    views = augment_batch(key, batch["image"], self.config.augment)
    logits, features = model(views, train=True)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
    nll = -jnp.take_along_axis(logp, labels[:, None], -1)[:, 0]
    w = method_state["weights"][labels]
    loss = jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1e-6)
    aux = {"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
           "clusters/nmi_previous": method_state["nmi_previous"], "clusters/nmi_labels": method_state["nmi_labels"],
           "clusters/used_train": method_state["clusters_used"],
           **collapse_metrics(features["embedding"])}
    return loss, aux, method_state

  def features(self, model, inputs) -> jax.Array:
    """Frozen, evaluation-mode encoder features [B, D] of raw (uint8 or [0, 1]) images."""
    return model.encode(eval_transform(inputs["image"], self.config.augment), train=False)

  def layer_features(self, model, inputs) -> dict[str, jax.Array]:
    return resnet_stage_features(model.encoder, eval_transform(inputs["image"], self.config.augment))

  def cluster_assignments(self, model, inputs) -> jax.Array:
    """[B] the top layer's predicted cluster (evaluation view, frozen), for `ClusterNMI`."""
    logits, _ = model(eval_transform(inputs["image"], self.config.augment), train=False)
    return jnp.argmax(logits, axis=-1)

  def evaluators(self):
    return (KNN(), LinearProbe(), LayerProbe(), ClusterNMI())
