"""Speaker embeddings with the triplet loss: FaceNet's objective over recordings, positives the
recordings of one speaker.

Schroff et al. 2015 (FaceNet) train on identity-labelled batches; the same
loss trains speaker embeddings (Li et al. 2017, "Deep Speaker"; Zhang &
Koishida 2017, "End-to-end text-independent speaker verification with
triplet loss"). Each recording gives two random crops
(`audio.crop_samples`) of log-mel frames through Mockingjay's bidirectional
Transformer (`sslax.models.frames.FrameTransformer`), mean-pooled over the
valid frames, then a 2-layer projector to an l2-normalized embedding
(`projector.out_dim`). `sslax.losses.triplet_loss` (squared distances, margin
`method.margin`, `method.mining` over the global batch) takes as positives:

- `method.positives = "speaker"`: every row of the anchor's speaker (its other
  crop included), the batch carrying the speaker ids
  (`Audio(with_speaker=True)`);
- `"crops"`: only the other crop of the same recording: the self-supervised form
  of `sslax.methods.triplet`, for unlabelled audio.

Two crops keep a positive for every anchor whatever the batch holds (a batch
of 32 from LibriSpeech's 2,338 speakers rarely has two recordings of one).
The probes read the pooled encoder (`features`); `Verification` also reads
the embedding (`embeddings`): recall@1 and the equal error rate of speaker
pairs.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.config import check_config_value, is_positive_int
from sslax.eval.collapse import collapse_metrics
from sslax.eval.verification import Verification
from sslax.losses import l2_normalize, triplet_loss
from sslax.losses.triplet import MINING
from sslax.methods.base import MethodCard, register
from sslax.methods.speech_frames import FrameMethod
from sslax.models.frames import FrameTransformer
from sslax.models.heads import MLPHead
from sslax.models.pooling import masked_mean

POSITIVES = ("speaker", "crops")


class SpeakerNet(nnx.Module):
  """A frame Transformer, mean-pooled, and a projector: `encode` for the probes, `embed` for the
  loss and verification."""

  def __init__(self, *, in_dim: int, dim: int, depth: int, num_heads: int, mlp_dim: int, dropout: float,
               hidden_dim: int, out_dim: int, rngs: nnx.Rngs):
    self.encoder = FrameTransformer(in_dim=in_dim, dim=dim, depth=depth, num_heads=num_heads, mlp_dim=mlp_dim,
                                    dropout=dropout, head=False, rngs=rngs)
    self.projector = MLPHead(dim, hidden_dim, out_dim, num_layers=2, batch_norm=False, rngs=rngs)

  def encode(self, feats, valid, key=None):
    return self.encoder.encode(feats, valid, key)

  def embed(self, feats, valid, key=None):
    """feats [B, T, F], valid [B, T] -> (l2-normalized embeddings [B, E] float32, pooled [B, D])."""
    pooled = masked_mean(self.encode(feats, valid, key)[0], valid)
    return l2_normalize(self.projector(pooled)[0].astype(jnp.float32)), pooled


@register("speaker_triplet")
class SpeakerTriplet(FrameMethod):
  card = MethodCard(
      family="contrastive",
      paper="Schroff et al. 2015, [FaceNet](https://arxiv.org/abs/1503.03832); for speakers, Li et al. 2017, "
            "[Deep Speaker](https://arxiv.org/abs/1705.02304)",
      objective="max(||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha, 0) over two crops of each recording, "
                "positives the anchor's speaker (or its other crop), negatives mined in the global batch",
      loss="sslax.losses.triplet_loss",
      reference="TensorFlow Addons `triplet_semihard_loss` / `triplet_hard_loss`; PyTorch `TripletMarginLoss`",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_triplet.py::test_mined_triplets_match_numpy_and_torch_triplet_margin_loss",
             "tests/test_triplet.py::test_verification_metrics_match_numpy"),
      results=("Speech methods on spoken digits", "MFCC", "Speaker triplet at random init",
               "Speaker triplet pretrained"))

  @property
  def inputs(self):
    return dataclasses.replace(super().inputs, with_speaker=self.config.method.positives == "speaker")

  @property
  def probe_inputs(self):
    return super().inputs

  def check_config(self):
    super().check_config()
    c = self.config
    check_config_value(c, "method.margin", lambda v: v > 0, "a positive number")
    check_config_value(c, "method.mining", lambda v: v in MINING, f"one of {list(MINING)}")
    check_config_value(c, "method.positives", lambda v: v in POSITIVES, f"one of {list(POSITIVES)}")
    check_config_value(c, "model.num_heads", is_positive_int, "a positive integer")
    check_config_value(c, "projector.hidden_dim", is_positive_int, "a positive integer")
    check_config_value(c, "projector.out_dim", is_positive_int, "a positive integer")

  def build_model(self, rngs: nnx.Rngs) -> SpeakerNet:
    m, p = self.config.model, self.config.projector
    return SpeakerNet(in_dim=self.filterbank.num_features, dim=m.dim, depth=m.depth, num_heads=m.num_heads,
                      mlp_dim=m.mlp_dim, dropout=m.dropout, hidden_dim=p.hidden_dim, out_dim=p.out_dim, rngs=rngs)

  def loss(self, model, batch, method_state, key, step, target=None):
    k_crop1, k_crop2, k_model = jax.random.split(key, 3)
    n = batch["audio"].shape[0]
    # both crops in one pass: one program, the batch dimension stays sharded
    f1, v1 = self.frames(batch["audio"], batch["length"], k_crop1)
    f2, v2 = self.frames(batch["audio"], batch["length"], k_crop2)
    z, pooled = model.embed(jnp.concatenate([f1, f2]), jnp.concatenate([v1, v2]), k_model)
    m = self.config.method
    ids = batch["speaker"] if m.positives == "speaker" else jnp.arange(n)
    loss, aux = triplet_loss(z, jnp.concatenate([ids, ids]).astype(jnp.int32), margin=m.margin, mining=m.mining,
                             squared=True)
    return loss, {**aux, **collapse_metrics(pooled[:n])}, method_state

  def embeddings(self, model, inputs) -> jax.Array:
    """The l2-normalized embeddings [B, E] of the whole recordings (evaluation mode)."""
    feats, valid = self.frames(inputs["audio"], inputs["length"])
    return model.embed(feats, valid)[0]

  def evaluators(self):
    return (*super().evaluators(), Verification("speaker"), Verification("speaker", embeddings=True))
