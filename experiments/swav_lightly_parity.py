"""sslax's SwAV loss against lightly's `SwaVLoss` itself, and tests/torch_reference.py's restatement of it.

  pip install --no-deps lightly==1.6.0 && python experiments/swav_lightly_parity.py

lightly's `lightly.loss` package imports torchvision (whose CUDA wheels do not load beside the CPU
torch of the `test` extra), so this loads `lightly/loss/swav_loss.py`, which imports only torch, by
its path. Prints the largest relative loss and gradient differences over crop layouts with and
without the queue.
"""
import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from torch_reference import swav_loss_lightly  # noqa: E402

from sslax.losses import sinkhorn_knopp, swav_loss  # noqa: E402


def lightly_swav_loss():
  spec = importlib.util.find_spec("lightly")
  if spec is None:
    sys.exit("lightly is not installed: pip install --no-deps lightly==1.6.0")
  path = os.path.join(os.path.dirname(spec.origin), "loss", "swav_loss.py")
  module_spec = importlib.util.spec_from_file_location("lightly_swav_loss", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.SwaVLoss()


def cosine_scores(rng, *shape):
  e = rng.normal(size=(*shape[:-1], 32))
  c = rng.normal(size=(32, shape[-1]))
  return (e / np.linalg.norm(e, axis=-1, keepdims=True) @ (c / np.linalg.norm(c, axis=0))).astype(np.float32)


def main():
  criterion = lightly_swav_loss()
  rng = np.random.default_rng(0)
  worst = {"loss vs lightly": 0.0, "grad vs lightly": 0.0, "torch_reference vs lightly": 0.0}
  for num_local, queue_size in [(0, 0), (2, 0), (4, 0), (2, 256), (6, 512)]:
    n, k = 64, 300
    scores = cosine_scores(rng, 2 + num_local, n, k)
    queue = cosine_scores(rng, 2, queue_size, k) if queue_size else None
    crops = [torch.tensor(s, requires_grad=True) for s in scores]
    queue_t = None if queue is None else [torch.tensor(q) for q in queue]
    ref = criterion(crops[:2], crops[2:], queue_t)
    ref.backward()
    restated = swav_loss_lightly([c.detach() for c in crops[:2]], [c.detach() for c in crops[2:]], queue_t)

    def ours(s):
      joint = s[:2] if queue is None else jnp.concatenate([s[:2], jnp.asarray(queue)], axis=1)
      return swav_loss(s, jnp.stack([sinkhorn_knopp(joint[i])[:n] for i in range(2)]))[0]

    loss, grad = jax.value_and_grad(ours)(jnp.asarray(scores))
    ref_grad = np.stack([c.grad.numpy() for c in crops])
    worst["loss vs lightly"] = max(worst["loss vs lightly"], abs(float(loss) - ref.item()) / abs(ref.item()))
    worst["grad vs lightly"] = max(worst["grad vs lightly"],
                                   float(np.abs(np.asarray(grad) - ref_grad).max() / np.abs(ref_grad).max()))
    worst["torch_reference vs lightly"] = max(worst["torch_reference vs lightly"],
                                              abs(restated.item() - ref.item()) / abs(ref.item()))
    print(f"local crops {num_local}, queue {queue_size}: sslax {float(loss):.6f}, lightly {ref.item():.6f}")
  for name, value in worst.items():
    print(f"{name}: largest relative difference {value:.1e}")


if __name__ == "__main__":
  main()
