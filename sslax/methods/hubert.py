"""HuBERT (Hsu et al., IEEE/ACM TASLP 2021), both iterations, through the shared train step.

wav2vec 2.0's masking (fairseq's HuBERT BASE: mask_prob 0.8, span 10, about
half of the frames) over the conv features; the Transformer predicts, at each
masked frame, the k-means cluster of that frame's MFCCs (13 + deltas +
delta-deltas, per-utterance CMVN) from cosine similarities to one embedding
per cluster at temperature 0.1; the loss is on masked frames only (unmasked
weight 0), plus wav2vec 2.0's feature penalty.

Design: the k-means runs on device in `refresh`, once before step 0, on the
MFCC frames of up to `method.kmeans_frames` training frames (`sslax.kmeans`,
k-means++ then Lloyd), and the centroids live in the method state. Each
step assigns the frames of its own random crop to their nearest centroid, so
the targets are a pure function of the checkpointed centroids and the batch:
a resumed run has exactly the targets it had (fairseq dumps labels to disk
next to the run instead). The MFCC hop must equal the conv encoder's total
stride, so frame t of the MFCCs labels conv frame t (fairseq's label rate ==
feature rate).

Iteration 2 (`method.targets = "layer"`): the frozen network of a finished
iteration-1 run sits in the method state as "teacher", copied there before
step 0 by `train.init_from = (("method_state/teacher", <its workdir>, ""),)`
(`sslax.train.pretrained`: the loop reads the other run, not the method);
`refresh` runs the k-means on its `method.teacher_layer` frames (the paper:
layer 6 of 12, 500 clusters), and each step labels its crop with the
teacher's frames of that crop, with no dropout and no mask. The new network
trains from scratch, as in the paper. Keeping the teacher in the state makes
a checkpoint self-contained (resume needs neither the teacher's workdir nor a
label dump) at the cost of a second copy of the weights in it.
"""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.augment.audio import normalize, random_crop, span_mask
from sslax.augment.filterbank import make_filterbank, mfcc_with_deltas
from sslax.config import check_config_value, is_positive_int
from sslax.data import eval_batches
from sslax.eval.collapse import collapse_metrics
from sslax.kmeans import assign, kmeans, label_stats
from sslax.losses.clustering import hubert_loss
from sslax.losses.wav2vec2 import feature_penalty
from sslax.methods.base import MethodCard, register
from sslax.methods.wav2vec2 import Wav2Vec2Method
from sslax.models.hubert import HuBERT
from sslax.models.pooling import masked_mean
from sslax.models.functional import merge_model, split_model
from sslax.models.wav2vec2 import conv_output_lengths

log = logging.getLogger("sslax")
TARGETS = ("mfcc", "layer")


@register("hubert")
class HuBERTMethod(Wav2Vec2Method):
  card = MethodCard(
      family="clustering",
      paper="Hsu et al. 2021, [HuBERT](https://arxiv.org/abs/2106.07447)",
      objective="cross-entropy of cos(projected context, cluster embedding) / 0.1 against the k-means cluster "
                "of each masked frame's MFCCs (iteration 1) or of a layer of the iteration-1 network (iteration 2), "
                "+ feature penalty",
      loss="sslax.losses.clustering.hubert_loss",
      reference="fairseq `examples/hubert` (`hubert.py`, `simple_kmeans`), Hugging Face `HubertModel`",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_hubert.py::test_hubert_loss_matches_numpy",
             "tests/test_hubert.py::test_kmeans_on_1_and_8_devices_and_against_lloyd_in_numpy",
             "tests/test_hubert.py::test_targets_restored_exactly_on_resume",
             "tests/test_hubert.py::test_purity",
             "tests/test_hubert.py::test_second_iteration_clusters_the_teacher_layer"),
      results=("Speech methods on spoken digits", "MFCC", "HuBERT at random init", "HuBERT pretrained",
               "HuBERT iteration 2 pretrained"))

  def check_config(self):
    c = self.config
    check_config_value(c, "method.num_clusters", is_positive_int, "a positive integer")
    check_config_value(c, "method.temperature", lambda v: v > 0, "a positive number")
    check_config_value(c, "method.kmeans_frames", is_positive_int, "a positive integer")
    check_config_value(c, "method.kmeans_iters", is_positive_int, "a positive integer")
    check_config_value(c, "method.feature_penalty_weight", lambda v: v >= 0, "a non-negative number")
    check_config_value(c, "method.mask_prob", lambda v: 0 < v <= 1, "a number in (0, 1]")
    check_config_value(c, "method.mask_length", is_positive_int, "a positive integer")
    check_config_value(c, "audio.crop_samples", is_positive_int, "a positive integer")
    check_config_value(c, "data.max_samples", lambda v: is_positive_int(v) and v >= c.audio.crop_samples,
                       f"an integer >= audio.crop_samples={c.audio.crop_samples}")
    targets = c.method.get("targets", "mfcc")
    if targets not in TARGETS:
      raise ValueError(f"method.targets: expected one of {list(TARGETS)}, got {targets!r}")
    if targets == "mfcc":
      check_config_value(c, "fbank.kind", lambda v: v == "mfcc", "'mfcc' (HuBERT's first-iteration features)")
      stride = int(np.prod([layer[2] for layer in c.model.conv_layers]))
      check_config_value(c, "fbank.hop_length", lambda v: v == stride,
                         f"the conv encoder's total stride {stride} (one MFCC frame per conv frame)")
    else:
      check_config_value(c, "train.init_from", lambda v: any(tuple(e)[:1] == ("method_state/teacher",) for e in v),
                         "an entry ('method_state/teacher', <the iteration-1 run's workdir>, '')")
      check_config_value(c, "method.teacher_clusters", is_positive_int,
                         "a positive integer (the iteration-1 run's method.num_clusters)")
      layers = ["input"] + [f"layer_{i}" for i in range(c.model.depth)]
      check_config_value(c, "method.teacher_layer", lambda v: v in layers, f"one of {layers}")
    frames = conv_output_lengths(int(c.audio.crop_samples), c.model.conv_layers)
    if frames < c.method.mask_length + 1:
      raise ValueError(f"audio.crop_samples: expected a crop long enough for more than one mask span of "
                       f"method.mask_length={c.method.mask_length} frames, got {c.audio.crop_samples} samples "
                       f"= {frames} frames")
    check_config_value(c, "model.dim", lambda v: is_positive_int(v) and v % c.model.num_heads == 0,
                       f"a multiple of model.num_heads={c.model.num_heads}")

  def build_model(self, rngs: nnx.Rngs, num_clusters: int | None = None) -> HuBERT:
    m = self.config.model
    return HuBERT(num_clusters=num_clusters or self.config.method.num_clusters,
                  conv_layers=tuple(tuple(layer) for layer in m.conv_layers), extractor_mode=m.extractor_mode,
                  dim=m.dim, depth=m.depth, num_heads=m.num_heads, mlp_dim=m.mlp_dim, final_dim=m.final_dim,
                  pos_conv_kernel=m.pos_conv_kernel, pos_conv_groups=m.pos_conv_groups, dropout=m.dropout,
                  dropout_input=m.dropout_input, dropout_features=m.dropout_features,
                  feature_grad_mult=m.feature_grad_mult, rngs=rngs)

  @property
  def second_iteration(self) -> bool:
    return self.config.method.get("targets", "mfcc") == "layer"

  def init_state(self, model, key):
    k = self.config.method.num_clusters
    dim = self.config.model.dim if self.second_iteration else 3 * self.config.fbank.n_mfcc
    # zeros until `refresh` clusters the frames before step 0
    state = {"centroids": jnp.zeros((k, dim), jnp.float32), "inertia": jnp.zeros((), jnp.float32),
             **{f"{by}_{name}": jnp.zeros((), jnp.float32) for by in ("digit", "speaker")
                for name in ("purity", "cluster_purity", "pnmi")}}
    if self.second_iteration:  # the iteration-1 network, frozen, until train.init_from copies it in
      teacher = nnx.eval_shape(lambda: self.build_model(nnx.Rngs(0), self.config.method.teacher_clusters))
      state["teacher"] = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), split_model(teacher)[1])
    return state

  @property
  def refresh_every(self) -> int:
    return 1 << 62  # once, before step 0

  def mfcc(self, audio, lengths):
    return mfcc_with_deltas(make_filterbank(self.config), audio.astype(jnp.float32), lengths)

  def teacher_frames(self, teacher, audio, lengths):
    """([B, T, D] frames of `method.teacher_layer` of the frozen iteration-1 network, [B, T] valid)."""
    _, feats = teacher.encode(normalize(audio.astype(jnp.float32), lengths), lengths)
    return jax.lax.stop_gradient(feats[self.config.method.teacher_layer]), feats["valid"]

  def refresh(self, state, data, mesh, step: int):
    """k-means of the first `method.kmeans_frames` training frames (their MFCCs, or the teacher's
    layer) -> centroids; with how well the clusters follow the digit and the speaker
    (`sslax.kmeans.label_stats`)."""
    if data.train is None:
      raise ValueError("method.name: 'hubert' clusters the training split's frames, and the run has none")
    m = self.config.method
    method_state = dict(state.method_state)
    if self.second_iteration:
      if not any(bool(jnp.any(x != 0)) for x in jax.tree.leaves(method_state["teacher"])):
        raise ValueError("train.init_from: expected the iteration-1 network in method_state/teacher before step 0, "
                         "found it all zeros (no entry copied it in)")
      teacher = merge_model(state.graphdef, method_state["teacher"], state.batch_stats)
      fn = jax.jit(lambda a, n: self.teacher_frames(teacher, a, n))
    else:
      fn = jax.jit(self.mfcc)
    frames, digits, speakers, seen = [], [], [], 0
    for batch in eval_batches(data.train, batch_size=256, transform=self.inputs.transform(("label", "speaker"))):
      feats, valid = jax.device_get(fn(jnp.asarray(batch["audio"]), jnp.asarray(batch["length"])))
      frames.append(feats[valid])
      digits.append(np.repeat(batch["label"], valid.sum(1)))
      speakers.append(np.repeat(batch["speaker"], valid.sum(1)))
      seen += int(valid.sum())
      if seen >= m.kmeans_frames:
        break
    x = np.concatenate(frames)[: m.kmeans_frames]
    key = jax.random.fold_in(jax.random.key(self.config.seed), 31)
    centroids, inertia = kmeans(key, jnp.asarray(x), m.num_clusters, m.kmeans_iters)
    clusters = np.asarray(assign(jnp.asarray(x), centroids))
    method_state.update(centroids=centroids, inertia=inertia)
    for by, labels in (("digit", digits), ("speaker", speakers)):
      stats = label_stats(clusters, np.concatenate(labels)[: m.kmeans_frames], m.num_clusters)
      method_state.update({f"{by}_{name}": jnp.float32(v) for name, v in stats.items()})
    log.info("hubert: %d clusters of %d %s frames, inertia %.4g; %s", m.num_clusters, len(x),
             m.teacher_layer if self.second_iteration else "MFCC", float(inertia),
             ", ".join(f"{k} {float(v):.4f}" for k, v in method_state.items() if k.startswith(("digit", "speaker"))))
    return state.replace(method_state=method_state)

  def targets(self, method_state, audio, lengths, num_frames: int, model=None) -> jax.Array:
    """[B, T] cluster id of each conv frame (its MFCCs, or the teacher's frame of this crop)."""
    if self.second_iteration:
      teacher = merge_model(nnx.graphdef(model), method_state["teacher"], nnx.state(model, nnx.BatchStat))
      feats, _ = self.teacher_frames(teacher, audio, lengths)
    else:
      feats, _ = self.mfcc(audio, lengths)
    feats = feats[:, :num_frames]
    b, t, d = feats.shape
    return assign(feats.reshape(b * t, d), method_state["centroids"]).reshape(b, t)

  def loss(self, model, batch, method_state, key, step, target=None):
    c = self.config
    k_crop, k_mask, k_model = jax.random.split(key, 3)
    audio, lengths = random_crop(k_crop, batch["audio"].astype(jnp.float32), batch["length"], c.audio.crop_samples)
    num_frames = conv_output_lengths(int(audio.shape[1]), model.conv_layers)
    frames = model.frame_lengths(lengths)
    targets = self.targets(method_state, audio, lengths, num_frames, model)
    mask = span_mask(k_mask, frames, num_frames, mask_prob=c.method.mask_prob, mask_length=c.method.mask_length,
                     min_masks=c.method.get("min_masks", 2))
    out = model(normalize(audio, lengths), lengths, mask, key=k_model)
    masked = mask & out["valid"]
    loss_m, aux = hubert_loss(out["projected"], model.label_embs[...], targets, masked,
                              temperature=c.method.temperature)
    _, aux_u = hubert_loss(out["projected"], model.label_embs[...], targets, ~mask & out["valid"],
                           temperature=c.method.temperature)
    penalty = feature_penalty(out["features"], out["valid"])
    loss = loss_m + c.method.feature_penalty_weight * penalty
    metrics = {"masked_loss": loss_m, "feature_penalty": penalty, "accuracy": aux["accuracy"],
               "unmasked_accuracy": aux_u["accuracy"],
               "mask_fraction": jnp.sum(masked) / jnp.maximum(jnp.sum(out["valid"]), 1),
               "target_digit_purity": method_state["digit_purity"], "target_digit_pnmi": method_state["digit_pnmi"],
               "kmeans_inertia": method_state["inertia"],
               **collapse_metrics(masked_mean(out["projected"], out["valid"]))}
    return loss, metrics, method_state
