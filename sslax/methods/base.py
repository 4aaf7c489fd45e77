"""What a method contributes to the shared train step.

A method is a small object of pure functions; it never owns a loop:

- `build_model(rngs) -> nnx.Module`: encoder plus heads; `model.encode(x)`
  gives frozen features for evaluation.
- `init_state(model) -> pytree`: extra state carried in `TrainState.method_state`.
- `loss(model, batch, method_state, key, step) -> (loss, aux, method_state)`.
- `validate_batch(batch)`: raises ValueError for inputs it cannot take,
  before anything is compiled.
"""
from __future__ import annotations

import numpy as np


def validate_image_batch(batch, *, channels: int, num_devices: int, min_side: int = 1) -> None:
  """Checks a host batch {"image": [B, H, W, C] uint8 or float} against what a vision method needs.

  Raises ValueError naming the field, the expected and the actual value.
  """
  if "image" not in batch:
    raise ValueError(f"batch: expected an 'image' entry, got keys {sorted(batch)}")
  image = batch["image"]
  shape, dtype = tuple(image.shape), np.dtype(image.dtype)
  if len(shape) != 4:
    raise ValueError(f"batch.image: expected rank 4 [B, H, W, C], got rank {len(shape)} shape {shape}")
  if shape[-1] != channels:
    raise ValueError(f"batch.image: expected {channels} channels (model.in_channels), got {shape[-1]} (shape {shape})")
  if not (dtype == np.uint8 or np.issubdtype(dtype, np.floating)):
    raise ValueError(f"batch.image: expected dtype uint8 or float, got {dtype}")
  if shape[0] == 0:
    raise ValueError("batch.image: expected a non-empty batch, got batch size 0")
  if shape[0] % num_devices:
    raise ValueError(f"batch.image: expected a batch size divisible by the {num_devices} devices, got {shape[0]}")
  if min(shape[1:3]) < min_side:
    raise ValueError(f"batch.image: expected height and width >= {min_side}, got {shape[1:3]}")
