"""SwAV on CIFAR-10 (variants and data: see cifar10_common.py).

full = solo-learn's scripts/pretrain/cifar/swav.yaml: ResNet-18, projector
2048-128, 3000 prototypes, temperature 0.1, Sinkhorn epsilon 0.05 with 3
iterations, a queue of 3840 from epoch 50, prototypes frozen for 2 epochs,
LARS lr 0.6, weight decay 1e-6, two 32x32 crops (solo-learn uses no
multi-crop on CIFAR).

cpu: projector 512-128 and 100 prototypes, two 16x16 local crops (scale
0.14-0.4, as DINO's row), a queue of 1280 (5 batches) from step 25, the
prototypes frozen for the 25 warm-up steps (the epoch-based starts of `full`
lie beyond 250 steps), and AdamW lr 1e-3, weight decay 1e-4 (lightly's SwAV
example). With LARS (lr 0.6 and 0.3) the embedding collapsed within 50 steps
of the warm-up's end (effective rank 13 -> 2.5, gradient norm up to 48) and
the features fell below random init; with 1000 prototypes the codes of 256
images stayed near uniform (entropy 6.3-6.6 of ln 1000 = 6.9); see
experiments/RESULTS.md. The cluster NMI and kNN are logged every 50 steps.
"""
from cifar10_common import VARIANTS, cifar10_config  # noqa: F401 (VARIANTS: the args it takes)
import ml_collections


def get_config(arg: str | None = None):
  c = cifar10_config(arg, "swav")
  epoch = 50000 // 256
  c.method = ml_collections.ConfigDict({
      "name": "swav", "num_prototypes": 3000, "temperature": 0.1, "epsilon": 0.05, "sinkhorn_iterations": 3,
      "num_local_crops": 0, "local_crop_size": (16, 16), "local_crop_scale": (0.14, 0.4),
      "queue_size": 3840 // 256 * 256, "queue_start_step": 50 * epoch, "freeze_prototypes_steps": 2 * epoch})
  c.projector.hidden_dim, c.projector.out_dim = 2048, 128
  c.optim.name, c.optim.lr, c.optim.weight_decay = "lars", 0.6, 1e-6
  if arg == "cpu":
    c.projector.hidden_dim, c.method.num_prototypes, c.method.num_local_crops = 512, 100, 2
    c.method.queue_size, c.method.queue_start_step, c.method.freeze_prototypes_steps = 1280, 25, 25
    c.optim.name, c.optim.lr, c.optim.weight_decay = "adamw", 1e-3, 1e-4
    c.train.knn_every, c.eval.monitor_max_train = 50, 5000
  elif arg == "smoke":
    c.projector.hidden_dim, c.projector.out_dim, c.method.num_prototypes = 64, 32, 50
    c.method.num_local_crops, c.method.local_crop_size = 2, (8, 8)
    c.method.queue_size, c.method.queue_start_step, c.method.freeze_prototypes_steps = 64, 0, 1
    c.optim.name, c.optim.lr = "adamw", 1e-3
  return c
