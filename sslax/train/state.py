"""The one train-state pytree.

Everything a run needs to continue exactly lives here and is sharded and
checkpointed together: online params, batch statistics, optimizer state
(which also holds EMA targets, see DESIGN.md), per-method state (MoCo queue,
DINO center, ...), the PRNG key and the step. The data iterator position is
saved beside it in the same checkpoint (`sslax.train.checkpoint`).
"""
from __future__ import annotations

import logging

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from sslax.models.conv import set_conv_impl
from sslax.models.functional import merge_model, split_model
from sslax.models.precision import set_compute_dtype
from sslax.models.sharding import install as install_activation_sharding
from sslax.optim import ema_target, make_optimizer
from sslax.train.mesh import any_sharded, state_shardings


@struct.dataclass
class TrainState:
  step: jax.Array            # int32 scalar
  params: nnx.State          # nnx.Param leaves of the model
  batch_stats: nnx.State     # nnx.BatchStat leaves (running means / variances)
  opt_state: optax.OptState
  method_state: Any          # a pytree owned by the method; {} when it has none
  rng: jax.Array             # raw uint32 key; step keys are fold_in(rng, step)
  nonfinite_steps: jax.Array  # int32: steps whose update was dropped for a non-finite value
  graphdef: nnx.GraphDef = struct.field(pytree_node=False)

  def model(self) -> nnx.Module:
    """The NNX module with this state's parameters and statistics."""
    return merge_model(self.graphdef, self.params, self.batch_stats)

  def target_model(self, target_params) -> nnx.Module:
    """The network with EMA target parameters (gradients stopped) and the current statistics."""
    return merge_model(self.graphdef, jax.lax.stop_gradient(target_params), self.batch_stats)


def build_optimizer(method, config, total_steps: int) -> optax.GradientTransformation:
  """The config's optimizer, followed by an `ema_target` when the method has a target network."""
  tx = make_optimizer(config.optim, total_steps, config.train.batch_size)
  tau = method.ema_schedule(total_steps)
  return tx if tau is None else optax.chain(tx, ema_target(tau))


def create_train_state(method, optimizer: optax.GradientTransformation, seed: int, *,
                       pretrained: bool = True) -> TrainState:
  """Builds the model of `method` from `seed` and wraps it with fresh optimizer state.
  `pretrained=False` skips reading `model.init_from` (the shapes are the same: `jax.eval_shape`)."""
  init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
  model = method.build_model(nnx.Rngs(params=init_key))
  init_from = method.config.get("model", {}).get("init_from")
  if init_from and pretrained:  # PyTorch-layout weights (model.init_from), checked and copied before anything compiles
    from sslax.weights import load_pretrained

    info = load_pretrained(model, init_from, encoder_path=method.config.model.get("init_from_path"))
    logging.getLogger(__name__).info("model.init_from: %d tensors from %s into %s (%s)", len(info["loaded"]),
                                     init_from, info["encoder_path"] or "the network", info["layout"])
  set_compute_dtype(model, method.config.train.get("compute_dtype", "float32"))
  set_conv_impl(model, method.config.train.get("conv_impl", "auto"))
  install_activation_sharding(model)  # a no-op outside the train step's batch_sharded block
  method_key = jax.random.fold_in(init_key, 1)
  graphdef, params, batch_stats = split_model(model)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                    opt_state=optimizer.init(params), method_state=method.init_state(model, method_key),
                    rng=train_key, nonfinite_steps=jnp.zeros((), jnp.int32), graphdef=graphdef)


def abstract_train_state(method, optimizer: optax.GradientTransformation, seed: int, mesh, sharding_config=None):
  """(the TrainState's shapes and dtypes as `jax.ShapeDtypeStruct`s carrying their shardings, the
  shardings): what a restore reads into and what `init_train_state` materializes, with nothing
  allocated (`jax.eval_shape`)."""
  # the weight files model.init_from names are read once, by init_train_state
  shapes = jax.eval_shape(lambda: create_train_state(method, optimizer, seed, pretrained=False))
  shardings = state_shardings(shapes, mesh, sharding_config)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), shapes, shardings)
  return abstract, shardings


def init_train_state(method, optimizer: optax.GradientTransformation, seed: int, shardings) -> TrainState:
  """`create_train_state` laid out as `shardings` (from `abstract_train_state`).

  When any leaf is split (FSDP), the whole initialization (model, optimizer moments, EMA
  target, method state) runs as one `jax.jit` with those output shardings, as big_vision
  does: each device computes and holds only its shards (random bits are partitionable), so no
  device ever holds a whole parameter or the whole state. Replicated state is whole on every
  device anyway, so it is built eagerly and copied; so is a model whose weights come from a file
  (`model.init_from`, read on the host).
  """
  build = lambda: create_train_state(method, optimizer, seed)  # noqa: E731
  if method.config.get("model", {}).get("init_from") or not any_sharded(shardings):
    return jax.device_put(build(), shardings)
  return jax.jit(build, out_shardings=shardings)()
