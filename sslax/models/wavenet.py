"""WaveNet (van den Oord et al. 2016, "WaveNet: A Generative Model for Raw Audio"; ibab/tensorflow-wavenet):
causal dilated convolutions of width 2, gated tanh x sigmoid units, residual and skip connections,
a 256-way softmax over mu-law classes of the next sample.

A width-2 causal convolution of dilation d is `[x_{t-d}, x_t] @ W`, written as one matmul of the
input and its copy shifted by d, so generation needs, per layer, only the layer's inputs of the last
d steps: `generate` keeps them in ring buffers and draws a whole recording in one `lax.scan`
(the "fast WaveNet" queues of Paine et al. 2016).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def _shift(x: jax.Array, d: int) -> jax.Array:
  """x [B, T, C] delayed by d steps along T (zeros before the start)."""
  return jnp.pad(x, ((0, 0), (d, 0), (0, 0)))[:, : x.shape[1]]


class ResidualBlock(nnx.Module):
  def __init__(self, channels: int, skip: int, dilation: int, *, rngs: nnx.Rngs):
    self.dilated = nnx.Linear(2 * channels, 2 * channels, rngs=rngs)  # [x_{t-d}, x_t] -> filter, gate
    self.residual = nnx.Linear(channels, channels, rngs=rngs)
    self.skip = nnx.Linear(channels, skip, rngs=rngs)
    self.dilation = dilation

  def step(self, prev: jax.Array, x: jax.Array):
    """One position: (x_{t-d}, x_t) [.., C] -> (residual output [.., C], skip [.., S])."""
    f, g = jnp.split(self.dilated(jnp.concatenate([prev, x], -1)), 2, axis=-1)
    z = jnp.tanh(f) * jax.nn.sigmoid(g)
    return x + self.residual(z), self.skip(z)

  def __call__(self, x):
    return self.step(_shift(x, self.dilation), x)


class WaveNet(nnx.Module):
  """ids [B, T] int in [0, classes) -> logits [B, T, classes] of the sample after each position.

  Args:
    dilations: per residual block (ibab's default: 1, 2, ..., 512 repeated); the receptive field is
      2 + sum(dilations) samples.
    channels: residual channels; skip: skip channels; classes: mu-law levels (256).
  """

  def __init__(self, *, dilations, channels: int = 32, skip: int = 256, classes: int = 256, rngs: nnx.Rngs):
    self.embed = nnx.Embed(classes, channels, rngs=rngs)
    self.causal = nnx.Linear(2 * channels, channels, rngs=rngs)  # the initial width-2 causal convolution
    self.blocks = nnx.List([ResidualBlock(channels, skip, int(d), rngs=rngs) for d in dilations])
    self.post1 = nnx.Linear(skip, skip, rngs=rngs)
    self.post2 = nnx.Linear(skip, classes, rngs=rngs)
    self.dilations, self.channels, self.classes = tuple(int(d) for d in dilations), channels, classes

  @property
  def receptive_field(self) -> int:
    return 2 + sum(self.dilations)

  def _head(self, skips):
    return self.post2(jax.nn.relu(self.post1(jax.nn.relu(skips))))

  def encode(self, ids: jax.Array):
    """(logits [B, T, classes], {"input": [B, T, C], "layer_<i>": each block's residual output})."""
    e = self.embed(ids)
    x = self.causal(jnp.concatenate([_shift(e, 1), e], -1))
    layers, skips = {"input": x}, 0.0
    for i, block in enumerate(self.blocks):
      x, s = block(x)
      skips = skips + s
      layers[f"layer_{i}"] = x
    return self._head(skips), layers

  def __call__(self, ids: jax.Array) -> jax.Array:
    return self.encode(ids)[0]

  def generate(self, key: jax.Array, first: jax.Array, num_steps: int, *, temperature: float = 1.0,
               forced: jax.Array | None = None):
    """Draws `num_steps` samples after `first` [B] in one compiled scan.

    forced: [B, num_steps] ids fed instead of the draws (teacher forcing; the test that the
    buffered step equals `__call__`). Returns (ids [B, num_steps], logits [B, num_steps, classes]):
    logits[:, t] is the distribution of ids[:, t] given the ids before it.
    """
    b = first.shape[0]
    buffers = [jnp.zeros((b, 1, self.channels))] + [jnp.zeros((b, d, self.channels)) for d in self.dilations]

    def step(carry, inputs):
      ids, bufs = carry
      t, k, force = inputs
      e = self.embed(ids)
      prev = jax.lax.dynamic_index_in_dim(bufs[0], 0, axis=1, keepdims=False)
      x = self.causal(jnp.concatenate([prev, e], -1))
      new = [bufs[0].at[:, 0].set(e)]
      skips = 0.0
      for block, buf in zip(self.blocks, bufs[1:]):
        slot = t % block.dilation
        prev = jax.lax.dynamic_index_in_dim(buf, slot, axis=1, keepdims=False)
        new.append(jax.lax.dynamic_update_index_in_dim(buf, x, slot, axis=1))
        x, s = block.step(prev, x)
        skips = skips + s
      logits = self._head(skips)
      draw = jax.random.categorical(k, logits / temperature).astype(jnp.int32)
      nxt = draw if forced is None else force
      return (nxt, new), (nxt, logits)

    keys = jax.random.split(key, num_steps)
    force = jnp.zeros((num_steps, b), jnp.int32) if forced is None else forced.T.astype(jnp.int32)
    _, (ids, logits) = jax.lax.scan(step, (first.astype(jnp.int32), buffers),
                                    (jnp.arange(num_steps), keys, force))
    return ids.T, jnp.swapaxes(logits, 0, 1)
