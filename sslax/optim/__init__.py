"""Optimizers, schedules and parameter masks (optax)."""
from sslax.optim.optimizers import decay_mask, learning_rate_schedule, make_optimizer

__all__ = ["decay_mask", "learning_rate_schedule", "make_optimizer"]
