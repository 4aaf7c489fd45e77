"""Optimizers, schedules, parameter masks and the EMA-target transform (optax)."""
from sslax.optim.ema import EmaTargetState, cosine_tau_schedule, ema_target, ema_target_params, find_ema_target
from sslax.optim.masks import count_trained, masked, trainable_labels
from sslax.optim.optimizers import decay_mask, learning_rate_schedule, make_optimizer

__all__ = ["EmaTargetState", "count_trained", "cosine_tau_schedule", "decay_mask", "ema_target", "ema_target_params",
           "find_ema_target", "learning_rate_schedule", "make_optimizer", "masked", "trainable_labels"]
