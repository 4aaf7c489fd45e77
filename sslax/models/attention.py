"""Multi-head dot-product attention with a choice of kernel (`model.attention_impl`).

q is [B, T, H, Dh], k and v [B, S, H, Dh] (the layout `jax.nn.dot_product_attention` takes; S = T
but for cross-attention); `mask` is None, [B, S] (the keys every query may read: padding) or
[B, T, S] (query t may read key s: packed sequences); `causal` adds position t reads keys <= t. The kernels:

- 'xla': `jax.nn.dot_product_attention` with the mask as a boolean mask and `is_causal`, never as
  an additive [B, 1, T, T] bias (XLA's reference path on every backend).
- 'blocked': one head at a time, query blocks of `block` rows (FlashAttention's tiling, Dao et
  al., NeurIPS 2022), with its backward written out: the probabilities are recomputed from the saved
  log-sum-exp instead of stored. Causal blocks stop at the diagonal, so the key blocks above it are
  never computed (with n blocks, (n + 1) / 2n of the dense FLOPs). Each query block reads all the
  keys it may read in one product, so its softmax is the ordinary one (FlashAttention's running
  max and sum matter where a row of scores does not fit in fast memory, a GPU kernel's business).
  On the CPU what it buys is cache: a step's scores, [B, block, T] for one head, stay in cache,
  where XLA's dense kernel writes and re-reads all [B, H, T, T] of them between its products
  (`experiments/attention_speed.py`; RESULTS.md, issue 33).
- 'cudnn': `jax.nn.dot_product_attention(implementation='cudnn')`, the fused cuDNN kernel
  (NVIDIA GPUs, float16 / bfloat16 inputs).
- 'auto' (the default): 'blocked' on the CPU backend when the sequence fills at least two blocks
  (measured at 128 tokens; shorter ones, such as a 65-token ViT, keep the one XLA program), 'xla'
  otherwise (on GPUs `jax.nn.dot_product_attention` picks its implementation for the masks).

Rows with no key to read (padding queries) are not defined by any of them alike (the dense kernels
average every value, 'blocked' those of its block); their outputs are padding for the caller to
ignore.
"""
from __future__ import annotations

import functools

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


def resolve_impl(impl: str, length: int, block: int = DEFAULT_BLOCK) -> str:
  """The kernel 'auto' stands for on this backend for `length` queries (causal or not alike)."""
  if impl != "auto":
    return impl
  return "blocked" if length >= 2 * block and jax.default_backend() == "cpu" else "xla"


def _allowed(mask: jax.Array | None) -> jax.Array | None:
  """[B, T] or [B, T, T] -> broadcastable to the scores [B, H, T, S]."""
  if mask is None:
    return None
  return mask[:, None, None, :] if mask.ndim == 2 else mask[:, None]


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None = None, *, causal: bool = False,
              impl: str = "auto", block: int = DEFAULT_BLOCK) -> jax.Array:
  """q [B, T, H, Dh], k, v [B, S, H, Dh], mask None / [B, S] / [B, T, S] bool -> [B, T, H, Dh]
  (S = T when causal; cross-attention reads S source keys); see the module doc.

  Examples:
    >>> q = jnp.ones((1, 5, 2, 4))
    >>> attention(q, q, q, causal=True, impl="blocked", block=2).shape
    (1, 5, 2, 4)
  """
  check_impl(impl, block)
  t = q.shape[1]
  if causal and k.shape[1] != t:
    raise ValueError(f"attention: causal attention expects as many keys as queries, got {k.shape[1]} keys for "
                     f"{t} queries")
  impl = resolve_impl(impl, t, block)
  if impl == "blocked":
    return _blocked(q, k, v, mask, block, causal)
  implementation = "cudnn" if impl == "cudnn" else None
  return jax.nn.dot_product_attention(q, k, v, mask=_allowed(mask), is_causal=causal, implementation=implementation)


def _spans(t: int, keys: int, block: int, causal: bool):
  """(first query, end of queries, end of keys) per query block of `t` queries over `keys` keys;
  causal blocks stop at the diagonal."""
  return [(s, min(s + block, t), min(s + block, t) if causal else keys) for s in range(0, t, block)]


def _block_scores(qh, kh, allowed, s, e, kend, causal):
  """float32 scores [B, e - s, kend] of one head's query block, masked."""
  scores = jnp.einsum("btd,bsd->bts", qh[:, s:e], kh[:, :kend], preferred_element_type=jnp.float32)
  keep = jnp.arange(kend)[None, :] <= jnp.arange(s, e)[:, None] if causal else None
  if allowed is not None:
    part = allowed[:, s:e, :kend] if allowed.shape[1] > 1 else allowed[:, :, :kend]
    keep = part if keep is None else keep & part
  return scores if keep is None else jnp.where(keep, scores, _MASKED)


def _pad_keys(x, t):
  return x if x.shape[1] == t else jnp.pad(x, ((0, 0), (0, t - x.shape[1]), (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _heads_blocked(q, k, v, allowed, causal, block):
  """q (scaled), k, v [H, B, T, Dh], allowed None or [B, 1 | T, T] bool -> [H, B, T, Dh]."""
  return _heads_blocked_fwd(q, k, v, allowed, causal, block)[0]


def _heads_blocked_fwd(q, k, v, allowed, causal, block):
  t, keys = q.shape[2], k.shape[2]

  def head(args):
    qh, kh, vh = args
    outs, lses = [], []
    for s, e, kend in _spans(t, keys, block, causal):
      scores = _block_scores(qh, kh, allowed, s, e, kend, causal)
      top = jnp.max(scores, axis=-1, keepdims=True)
      p = jnp.exp(scores - top)
      total = jnp.sum(p, axis=-1, keepdims=True)
      pv = jnp.einsum("bts,bsd->btd", p.astype(vh.dtype), vh[:, :kend], preferred_element_type=jnp.float32)
      outs.append((pv / total).astype(qh.dtype))
      lses.append(top + jnp.log(total))
    return jnp.concatenate(outs, axis=1), jnp.concatenate(lses, axis=1)

  out, lse = jax.lax.map(head, (q, k, v))
  return out, (q, k, v, allowed, out, lse)


def _heads_blocked_bwd(causal, block, res, d_out):
  """FlashAttention's backward per head and query block: P recomputed from the saved log-sum-exp,
  dV = P^T dO, dS = P (dO V^T - rowsum(dO * O)), dQ = dS K, dK = dS^T Q."""
  q, k, v, allowed, out, lse = res
  t, keys = q.shape[2], k.shape[2]

  def head(args):
    qh, kh, vh, oh, lh, dh = args
    dq, dk, dv = [], jnp.zeros(kh.shape, jnp.float32), jnp.zeros(vh.shape, jnp.float32)
    delta = jnp.sum(dh.astype(jnp.float32) * oh.astype(jnp.float32), axis=-1, keepdims=True)
    for s, e, kend in _spans(t, keys, block, causal):
      p = jnp.exp(_block_scores(qh, kh, allowed, s, e, kend, causal) - lh[:, s:e])
      do = dh[:, s:e]
      dv = dv + _pad_keys(jnp.einsum("bts,btd->bsd", p.astype(do.dtype), do, preferred_element_type=jnp.float32), keys)
      dp = jnp.einsum("btd,bsd->bts", do, vh[:, :kend], preferred_element_type=jnp.float32)
      ds = (p * (dp - delta[:, s:e])).astype(qh.dtype)
      dq.append(jnp.einsum("bts,bsd->btd", ds, kh[:, :kend], preferred_element_type=jnp.float32))
      dk = dk + _pad_keys(jnp.einsum("bts,btd->bsd", ds, qh[:, s:e], preferred_element_type=jnp.float32), keys)
    return (jnp.concatenate(dq, axis=1).astype(qh.dtype), dk.astype(kh.dtype), dv.astype(vh.dtype))

  dq, dk, dv = jax.lax.map(head, (q, k, v, out, lse, d_out))
  return dq, dk, dv, None


_heads_blocked.defvjp(_heads_blocked_fwd, _heads_blocked_bwd)


def _blocked(q, k, v, mask, block, causal):
  """[B, T, H, Dh] -> heads first for `lax.map` (one head per step: with all heads in one step the
  packed-segment backward ran as slow as XLA's dense one), and back."""
  allowed = None if mask is None else (mask[:, None, :] if mask.ndim == 2 else mask)
  scale = jnp.asarray(q.shape[-1] ** -0.5, q.dtype)
  qh, kh, vh = (jnp.transpose(x, (2, 0, 1, 3)) for x in (q * scale, k, v))
  return jnp.transpose(_heads_blocked(qh, kh, vh, allowed, causal, block), (1, 2, 0, 3))
