"""Optimizers and schedules from config, built on optax."""
from __future__ import annotations

import jax
import optax

from sslax.optim.masks import masked


def decay_mask(params):
  """True for weights that get weight decay / LARS adaptation: kernels, not biases or norm scales.

  solo-learn's `exclude_bias_n_norm` and the SimCLR / BYOL LARS recipes
  exclude every parameter of rank <= 1.
  """
  return jax.tree.map(lambda p: p.ndim > 1, params)


def learning_rate_schedule(optim_config, total_steps: int, global_batch_size: int):
  """Linear warm-up then cosine decay (or, with `optim.schedule='linear'`, fairseq's polynomial decay
  of power 1 used by wav2vec 2.0), peak `lr * batch / 256` when `scale_lr_with_batch`."""
  peak = optim_config.lr * (global_batch_size / 256 if optim_config.scale_lr_with_batch else 1.0)
  warmup = min(int(optim_config.warmup_steps), max(total_steps - 1, 0))
  schedule = optim_config.get("schedule", "cosine")
  if schedule == "linear":
    end = peak * optim_config.final_lr_fraction
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup) if warmup else optax.constant_schedule(peak),
                                 optax.linear_schedule(peak, end, max(total_steps - warmup, 1))], [warmup])
  if schedule != "cosine":
    raise ValueError(f"optim.schedule: expected 'cosine' or 'linear', got {schedule!r}")
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0 if warmup else peak, peak_value=peak, warmup_steps=warmup,
      decay_steps=max(total_steps, warmup + 1), end_value=peak * optim_config.final_lr_fraction)


def make_optimizer(optim_config, total_steps: int, global_batch_size: int) -> optax.GradientTransformation:
  """`optim.name` in {"lars", "sgd", "adamw"}, with weight decay masked off biases and norms.

  LARS is `optax.lars` (You et al. 2017) with the trust ratio also masked,
  as in the SimCLR reference and solo-learn.
  """
  lr = learning_rate_schedule(optim_config, total_steps, global_batch_size)
  name, wd = optim_config.name, optim_config.weight_decay
  if name == "lars":
    tx = optax.lars(lr, weight_decay=wd, weight_decay_mask=decay_mask, trust_ratio_mask=decay_mask,
                    trust_coefficient=optim_config.get("trust_coefficient", 0.001),
                    momentum=optim_config.momentum)
  elif name == "sgd":
    tx = optax.chain(optax.add_decayed_weights(wd, mask=decay_mask),
                     optax.sgd(lr, momentum=optim_config.momentum, nesterov=False))
  elif name == "adamw":
    tx = optax.adamw(lr, b1=optim_config.get("b1", 0.9), b2=optim_config.get("b2", 0.999),
                     eps=optim_config.get("eps", 1e-8), weight_decay=wd, mask=decay_mask)
  else:
    raise ValueError(f"optim.name: expected one of ['adamw', 'lars', 'sgd'], got {name!r}")
  if optim_config.get("grad_clip_norm", 0.0):
    tx = optax.chain(optax.clip_by_global_norm(optim_config.grad_clip_norm), tx)
  # `optim.freeze` / `optim.train_only`: parameter masks (frozen encoder, adapters); `optim.always`
  # paths (a downstream head) are trained whatever the masks say
  return masked(tx, freeze=tuple(optim_config.get("freeze", ())), train_only=tuple(optim_config.get("train_only", ())),
                always=tuple(optim_config.get("always", ())))
