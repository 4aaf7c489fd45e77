"""What the image-text methods share (CLIP in `clip.py`, SigLIP in `siglip.py`): two towers with
linear projections into one space, their inputs, the caption drawn per step, the evaluators.

Records are images with all their captions (`sslax.data.captions`): {"image": [H, W, 3] uint8,
"captions": [K, L] int32, "caption_lengths": [K] int32}. Each step draws one caption per
image on device from the step key, so an epoch sees every image once and, over epochs, each of
its captions.

Config:
  model        the image tower (`model.name`: a ResNet or ViT of `sslax.models`)
  text         the text tower: `kind` "gpt" (causal, CLIP's) or "bert" (bidirectional),
               `pooling` "last" (the end-of-text token, CLIP's), "cls" or "mean", and `vocab_size`,
               `max_len`, `dim`, `depth`, `num_heads`, `mlp_dim`, `dropout` of that model
  method       `embed_dim` of the shared space, `lock_image` / `lock_text` (a tower started from
               another run, `train.init_from`, kept frozen and in evaluation mode: LiT, Zhai et al.
               2022; its parameters must also be in `optim.freeze`)
  augment      the image view: random resized crop and flip (no colour jitter: captions name colours)
  eval.zeroshot  labelled images and prompts for `ZeroShot` (`sslax.eval.retrieval`)
"""
from __future__ import annotations

import functools
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sslax.augment import augment_batch, eval_transform
from sslax.config import check_config_value, is_positive_int
from sslax.data.modality import Captions, Combined
from sslax.eval import KNN, LinearProbe
from sslax.eval.retrieval import Retrieval, ZeroShot
from sslax.losses import l2_normalize
from sslax.methods.base import Method
from sslax.methods.two_view import image_inputs
from sslax.models import build_encoder
from sslax.models.language import BERT, GPT, attention_kwargs
from sslax.models.pooling import pool_tokens


class TwoTowers(nnx.Module):
  """An image encoder and a text Transformer, each with a bias-free linear projection to
  `embed_dim`, and the learned logit scale (and bias) of the loss.

  Args:
    scale_init: the initial logit scale t (stored as log t: CLIP 1 / 0.07, SigLIP 10).
    bias_init: the initial logit bias (SigLIP -10); None: no bias (CLIP).
  """

  def __init__(self, model_config, text_config, embed_dim: int, *, scale_init: float, bias_init: float | None,
               rngs: nnx.Rngs):
    self.image_tower = build_encoder(model_config, rngs)
    t = text_config
    kw = dict(vocab_size=t.vocab_size, max_len=t.max_len, dim=t.dim, depth=t.depth, num_heads=t.num_heads,
              mlp_dim=t.mlp_dim, dropout=t.dropout, **attention_kwargs(t), rngs=rngs)
    self.text_tower = GPT(**kw) if t.kind == "gpt" else BERT(**kw)
    init = nnx.initializers.normal(stddev=0.02)
    self.image_proj = nnx.Linear(self.image_tower.num_features, embed_dim, use_bias=False, kernel_init=init,
                                 rngs=rngs)
    self.text_proj = nnx.Linear(t.dim, embed_dim, use_bias=False, kernel_init=init, rngs=rngs)
    self.log_scale = nnx.Param(jnp.asarray(math.log(scale_init), jnp.float32))
    self.bias = None if bias_init is None else nnx.Param(jnp.asarray(bias_init, jnp.float32))


class ImageTextMethod(Method):
  """Two towers on captioned images; subclasses give the default logit scale and bias and `loss`."""

  default_scale_init: ClassVar[float] = 1 / 0.07
  default_bias_init: ClassVar[float | None] = None

  @property
  def scale_init(self) -> float:
    """`method.scale_init` when set (ALIGN: 1), else the method's (CLIP: 1 / 0.07; SigLIP: 10)."""
    value = self.config.method.get("scale_init")
    return float(self.default_scale_init if value is None else value)

  @property
  def bias_init(self) -> float | None:
    """`method.bias_init` when set, else the method's (SigLIP: -10; CLIP: none)."""
    value = self.config.method.get("bias_init")
    return self.default_bias_init if value is None else float(value)

  def __post_init__(self):
    c = self.config
    check_config_value(c, "method.embed_dim", is_positive_int, "a positive integer")
    if c.method.get("scale_init") is not None:
      check_config_value(c, "method.scale_init", lambda v: 0 < v <= float(c.method.get("max_scale", 100.0)),
                         "a positive number at most method.max_scale")
    check_config_value(c, "text.kind", lambda v: v in ("gpt", "bert"), "'gpt' (causal) or 'bert' (bidirectional)")
    check_config_value(c, "text.pooling", lambda v: v in ("last", "cls", "mean"), "'last', 'cls' or 'mean'")
    for key in ("vocab_size", "max_len", "dim", "depth", "num_heads", "mlp_dim"):
      check_config_value(c, f"text.{key}", is_positive_int, "a positive integer")
    check_config_value(c, "text.dim", lambda v: v % c.text.num_heads == 0,
                       f"a multiple of text.num_heads={c.text.num_heads}")
    check_config_value(c, "data.caption_len", lambda v: is_positive_int(v) and 3 <= v <= c.text.max_len,
                       f"an integer in [3, text.max_len={c.text.max_len}]")
    check_config_value(c, "data.max_captions", is_positive_int, "a positive integer")
    check_config_value(c, "data.framing", lambda v: v in ("eos", "cls_sep"), "'eos' or 'cls_sep'")
    need = ("pad", "eos") if c.data.framing == "eos" else ("pad", "cls", "sep")
    check_config_value(c, "data.special_ids", lambda v: all(k in v for k in need),
                       f"ids for {list(need)} (data.framing={c.data.framing!r})")
    check_config_value(c, "text.vocab_size", lambda v: v > max(c.data.special_ids.values()),
                       f"an integer above every data.special_ids value {dict(c.data.special_ids)}")
    freeze = tuple(c.optim.get("freeze", ()))
    for tower in ("image", "text"):
      if c.method.get(f"lock_{tower}") and f"{tower}_tower" not in freeze:
        raise ValueError(f"optim.freeze: expected {tower + '_tower'!r} in it (method.lock_{tower} is True), got "
                         f"{freeze}")
    super().__post_init__()

  @property
  def inputs(self) -> Combined:
    d = self.config.data
    return Combined((image_inputs(self.config), Captions(caption_len=int(d.caption_len),
                                                         max_captions=int(d.max_captions),
                                                         vocab_size=int(self.config.text.vocab_size))))

  @property
  def probe_inputs(self):
    """Labelled images alone (CIFAR-10 for the probes and zero-shot), resized to `data.image_size`."""
    return image_inputs(self.config)

  def build_model(self, rngs: nnx.Rngs) -> TwoTowers:
    return TwoTowers(self.config.model, self.config.text, int(self.config.method.embed_dim),
                     scale_init=self.scale_init, bias_init=self.bias_init, rngs=rngs)

  # -- the towers ---------------------------------------------------------------------------

  def image_features(self, model: TwoTowers, images, train: bool) -> jax.Array:
    """Pooled image-tower features [B, F] of already augmented / normalized images."""
    locked = bool(self.config.method.get("lock_image"))
    h, _ = model.image_tower(images, train=train and not locked)
    return jax.lax.stop_gradient(h) if locked else h

  def text_features(self, model: TwoTowers, ids, lengths, key=None) -> jax.Array:
    """Pooled text-tower features [B, D] of ids [B, L] with `lengths` [B] real tokens; dropout
    from `key` (None: none)."""
    locked = bool(self.config.method.get("lock_text"))
    key = None if locked else key
    valid = jnp.arange(ids.shape[1])[None, :] < lengths[:, None]
    if self.config.text.kind == "gpt":
      _, feats = model.text_tower(ids, valid, key=key)
      hidden = feats["hidden"]
    else:
      hidden, _ = model.text_tower(ids, valid, key=key)
    pooled = pool_tokens(hidden, valid, self.config.text.pooling)  # "last": the end-of-text token
    return jax.lax.stop_gradient(pooled) if locked else pooled

  def scale_and_bias(self, model: TwoTowers) -> tuple[jax.Array, jax.Array]:
    """(t, b): t = exp(log t) clamped at `method.max_scale` (CLIP's 100, as open_clip clamps its
    parameter after each step), b = 0 without a bias."""
    log_max = math.log(float(self.config.method.get("max_scale", 100.0)))
    scale = jnp.exp(jnp.minimum(model.log_scale[...], log_max))
    bias = jnp.zeros((), jnp.float32) if model.bias is None else model.bias[...]
    return scale, bias

  def embed_pair(self, model: TwoTowers, batch, key) -> tuple[jax.Array, jax.Array]:
    """(image embeddings [B, E], text embeddings [B, E]), unnormalized, in training mode: one
    augmented view per image, one of its captions drawn from `key`."""
    k_aug, k_pick, k_drop = jax.random.split(key, 3)
    images = augment_batch(k_aug, batch["image"], self.config.augment)
    lengths = batch["caption_lengths"]
    pick = jax.random.categorical(k_pick, jnp.where(lengths > 0, 0.0, -jnp.inf), axis=-1)  # [B]
    ids = jnp.take_along_axis(batch["captions"], pick[:, None, None], axis=1)[:, 0]
    length = jnp.take_along_axis(lengths, pick[:, None], axis=1)[:, 0]
    image = model.image_proj(self.image_features(model, images, train=True))
    text = model.text_proj(self.text_features(model, ids, length, k_drop))
    return image, text

  # -- evaluation hooks ---------------------------------------------------------------------

  def features(self, model: TwoTowers, inputs) -> jax.Array:
    """The image tower's pooled features [B, F] (before the projection) for the probes."""
    return self.image_features(model, eval_transform(inputs["image"], self.config.augment), train=False)

  def image_embeddings(self, model: TwoTowers, inputs) -> jax.Array:
    """l2-normalized image embeddings [B, E], evaluation mode."""
    return l2_normalize(model.image_proj(self.features(model, inputs)))

  def prompt_embeddings(self, model: TwoTowers, ids, lengths) -> jax.Array:
    """l2-normalized text embeddings [B, E] of ids [B, L] with `lengths` [B], no dropout."""
    return l2_normalize(model.text_proj(self.text_features(model, ids, lengths)))

  def image_text_embeddings(self, model: TwoTowers, inputs) -> jax.Array:
    """[B, 1 + K, E]: each image's embedding, then its K caption slots' (empty slots too)."""
    image = self.image_embeddings(model, inputs)
    ids, lengths = inputs["captions"], inputs["caption_lengths"]
    b, k, l = ids.shape
    text = self.prompt_embeddings(model, ids.reshape(b * k, l), jnp.maximum(lengths.reshape(b * k), 1))
    return jnp.concatenate([image[:, None], text.reshape(b, k, -1)], axis=1)

  @functools.cached_property
  def _tokenizer(self):
    from sslax.data.captions import caption_tokenizer

    return caption_tokenizer(self.config.data, None)

  def tokenize(self, texts) -> tuple[np.ndarray, np.ndarray]:
    """(ids [N, caption_len] int32, lengths [N] int32) of strings, framed as the captions."""
    from sslax.data.captions import frame_captions

    d = self.config.data
    encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
    return frame_captions([e.ids for e in encoded], caption_len=int(d.caption_len), framing=d.framing,
                          special_ids=dict(d.special_ids))

  def evaluators(self):
    return (Retrieval(), ZeroShot(), KNN(), LinearProbe())
