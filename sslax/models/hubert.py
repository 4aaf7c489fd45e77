"""The HuBERT model (Hsu et al., 2021): wav2vec 2.0's conv feature encoder and Transformer without the
quantizer, a projection of the context and one embedding per cluster (fairseq `hubert.py`'s
`final_proj` and `label_embs_concat`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sslax.models.transformer import dropout
from sslax.models.wav2vec2 import Wav2Vec2


class HuBERT(Wav2Vec2):
  """`Wav2Vec2(quantize=False)` + cluster embeddings [num_clusters, final_dim]."""

  def __init__(self, *, num_clusters: int, rngs: nnx.Rngs, **kw):
    super().__init__(quantize=False, rngs=rngs, **kw)
    final_dim = self.final_proj.out_features
    self.label_embs = nnx.Param(jax.random.uniform(rngs.params(), (num_clusters, final_dim)))

  def __call__(self, audio: jax.Array, lengths: jax.Array, mask: jax.Array, *, key: jax.Array | None = None,
               tau=None) -> dict[str, jax.Array]:
    """audio [B, L] normalized, lengths [B], mask [B, T] frames replaced by the mask embedding ->
    {"projected": [B, T, F], "features": [B, T, C] (conv output, for the penalty), "valid": [B, T]}."""
    k_in, k_enc = (None, None) if key is None else jax.random.split(key)
    z, valid = self._features(audio, lengths)
    if mask.shape != valid.shape:
      raise ValueError(f"mask: expected shape {valid.shape} (batch, frames), got {mask.shape}")
    x = dropout(self.post_extract_proj(self.layer_norm(z)), self.rates[0], k_in)
    x = jnp.where(mask[..., None], self.mask_emb[...].astype(x.dtype), x)
    c, _ = self._context(x, valid, k_enc)
    return {"projected": self.final_proj(c), "features": z, "valid": valid}
