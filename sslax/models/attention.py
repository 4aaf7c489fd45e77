"""Multi-head dot-product attention with a choice of kernel (`model.attention_impl`).

q, k, v are [B, T, H, Dh] (the layout `jax.nn.dot_product_attention` takes); `mask` is None, [B, T]
(the keys every query may read: padding) or [B, T, T] (query t may read key s: packed sequences);
`causal` adds position t reads keys <= t. The kernels:

- 'xla': `jax.nn.dot_product_attention` with the mask as a boolean mask and `is_causal`, never as
  an additive [B, 1, T, T] bias (XLA's reference path on every backend).
- 'blocked': causal attention by query blocks of `block` rows (FlashAttention's tiling, Dao et
  al., NeurIPS 2022, without its online softmax): query block i reads keys [0, end of block i) in
  one product, so the key blocks above the diagonal are never computed (with n blocks, (n + 1) /
  2n of the dense FLOPs). Each block's softmax sees all the keys it may read at once, so it is the
  ordinary softmax, and autodiff of the unrolled blocks is as fast as a hand-written backward
  (`experiments/attention_speed.py`); FlashAttention's running max and sum matter where a row of
  scores does not fit in fast memory, which is the GPU kernels' business, not XLA:CPU's.
- 'cudnn': `jax.nn.dot_product_attention(implementation='cudnn')`, the fused cuDNN kernel
  (NVIDIA GPUs, float16 / bfloat16 inputs).
- 'auto' (the default): 'blocked' for causal attention on the CPU backend when the sequence has
  more than one block, 'xla' otherwise; XLA on GPU picks its own fused attention for the masks.

Rows with no key to read (padding queries) are not defined by any of them alike (the dense kernels
average every value, 'blocked' those of its block); their outputs are padding for the caller to
ignore.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

IMPLS = ("auto", "xla", "blocked", "cudnn")
DEFAULT_BLOCK = 64
# the logit of a masked key, as jax.nn.dot_product_attention's (-0.7 x the float32 maximum): exp() of it
# minus any real logit is 0, and a row with nothing to read stays finite
_MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


def check_impl(impl: str, block: int = DEFAULT_BLOCK) -> None:
  """Raises ValueError naming `model.attention_impl` / `model.attention_block` for bad values."""
  if impl not in IMPLS:
    raise ValueError(f"model.attention_impl: expected one of {IMPLS}, got {impl!r}")
  if isinstance(block, bool) or not isinstance(block, int) or block < 1:
    raise ValueError(f"model.attention_block: expected an integer >= 1 (query rows per block), got {block!r}")


def resolve_impl(impl: str, causal: bool, length: int, block: int = DEFAULT_BLOCK) -> str:
  """The kernel 'auto' stands for on this backend, for a causal or not sequence of `length`."""
  if impl != "auto":
    return impl
  return "blocked" if causal and length > block and jax.default_backend() == "cpu" else "xla"


def _allowed(mask: jax.Array | None) -> jax.Array | None:
  """[B, T] or [B, T, T] -> broadcastable to the scores [B, H, T, S]."""
  if mask is None:
    return None
  return mask[:, None, None, :] if mask.ndim == 2 else mask[:, None]


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None = None, *, causal: bool = False,
              impl: str = "auto", block: int = DEFAULT_BLOCK) -> jax.Array:
  """q, k, v [B, T, H, Dh], mask None / [B, T] / [B, T, T] bool -> [B, T, H, Dh]; see the module doc.

  Examples:
    >>> q = jnp.ones((1, 5, 2, 4))
    >>> attention(q, q, q, causal=True, impl="blocked", block=2).shape
    (1, 5, 2, 4)
  """
  check_impl(impl, block)
  t = q.shape[1]
  impl = resolve_impl(impl, causal, t, block)
  if impl == "blocked":
    return _blocked(q, k, v, mask, block, causal)
  implementation = "cudnn" if impl == "cudnn" else None
  return jax.nn.dot_product_attention(q, k, v, mask=_allowed(mask), is_causal=causal, implementation=implementation)


def _blocked(q, k, v, mask, block, causal):
  """Query blocks of `block` rows over the keys up to each block's end, in [B, H, T, Dh] (one
  transpose each way: XLA:CPU's batched products and their gradients run ~2x faster in that layout
  than on [B, T, H, Dh] slices). Scores and softmax in float32, as `jax.nn.dot_product_attention`."""
  t, dh = q.shape[1], q.shape[-1]
  q, k, v = (jnp.swapaxes(x, 1, 2) for x in (q, k, v))
  q = q * jnp.asarray(dh ** -0.5, q.dtype)
  allowed = _allowed(mask)
  outs = []
  for start in range(0, t, block):
    end = min(start + block, t)
    stop = end if causal else t
    rows = jnp.arange(stop)[None, :] <= jnp.arange(start, end)[:, None] if causal else None
    if allowed is not None:
      part = allowed[..., start:end, :stop] if allowed.shape[-2] > 1 else allowed[..., :stop]
      rows = part if rows is None else rows & part
    if False:
      rows = rows & (allowed[..., start:end, :end] if allowed.shape[-2] > 1 else allowed[..., :end])
    scores = jnp.einsum("bhtd,bhsd->bhts", q[:, :, start:end], k[:, :, :stop], preferred_element_type=jnp.float32)
    scores = scores if rows is None else jnp.where(rows, scores, _MASKED)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    outs.append(jnp.einsum("bhts,bhsd->bhtd", probs, v[:, :, :stop]))
  return jnp.swapaxes(jnp.concatenate(outs, axis=2), 1, 2)
