"""The quickstart: SimCLR on scikit-learn's bundled digits, then a linear-probe report.

Pretrains a small ResNet with SimCLR on the 1,257 training digits, then
reports held-out linear-probe top-1 of (a) raw pixels, (b) the same encoder
at random initialization and (c) the SimCLR encoder, with the loss curve and
a 2-D t-SNE map of the learned test embeddings saved as PNG files.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np

from sslax.config import base_config, validate_config


def digits_config(arg: str | None = None):
  """SimCLR on `load_digits` (8x8 grayscale). `arg`: None/"default" or "smoke" (a few steps)."""
  c = base_config()
  c.data.source = "digits"
  c.model.name, c.model.in_channels, c.model.cifar_stem, c.model.width = "resnet_tiny", 1, True, 16
  c.projector.hidden_dim, c.projector.out_dim = 256, 64
  c.method.temperature = 0.2
  c.augment.crop_size, c.augment.crop_scale = (8, 8), (0.35, 1.0)
  c.augment.flip_prob = 0.0  # digits are not mirror-symmetric
  c.augment.brightness, c.augment.contrast, c.augment.jitter_prob = 0.4, 0.4, 0.8
  c.augment.saturation, c.augment.hue, c.augment.grayscale_prob = 0.0, 0.0, 0.0
  c.augment.blur_prob = 0.0
  c.augment.mean, c.augment.std = (0.3,), (0.4,)
  c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.warmup_steps = "adamw", 2e-3, 1e-4, 50
  c.optim.scale_lr_with_batch = False
  c.train.batch_size, c.train.num_steps, c.train.log_every = 256, 600, 20
  c.train.checkpoint_every, c.train.knn_every = 200, 200
  c.eval.knn_k, c.eval.batch_size = 20, 512
  c.eval.layer_probe = False  # the report compares pooled features only
  if arg == "smoke":
    c.model.width = 8
    c.projector.hidden_dim, c.projector.out_dim = 32, 16
    c.train.batch_size, c.train.num_steps, c.train.log_every = 64, 6, 2
    c.train.checkpoint_every, c.train.knn_every = 3, 0
  elif arg not in (None, "", "default"):
    raise ValueError(f"config arg: expected 'default' or 'smoke', got {arg!r}")
  return c


def _features(method, state, mesh, config, source):
  from sslax.eval import extract_features

  return extract_features(method, state, source, mesh, batch_size=config.eval.batch_size)


def _plot_loss(workdir, path):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from sslax.train.metrics import read_metrics

  recs = [r for r in read_metrics(workdir) if "loss" in r]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.plot([r["step"] for r in recs], [r["loss"] for r in recs])
  ax.set_xlabel("step")
  ax.set_ylabel("NT-Xent loss")
  ax.set_title("SimCLR pretraining on digits")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_embedding(features, labels, path, seed):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from sklearn.manifold import TSNE

  xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(features)
  fig, ax = plt.subplots(figsize=(5, 5))
  sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=8)
  ax.legend(*sc.legend_elements(), title="digit", fontsize=7, loc="best")
  ax.set_title("t-SNE of SimCLR features (held-out digits)")
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run_quickstart(workdir: str = "runs/quickstart", *, seed: int = 0, arg: str | None = None,
                   progress: bool = True) -> dict:
  """Pretrains, probes (a) pixels, (b) random init, (c) SimCLR; writes report.{json,md} and PNGs."""
  from sslax.data import get_source
  from sslax.eval import linear_probe
  from sslax.optim import make_optimizer
  from sslax.train.loop import train
  from sslax.train.state import create_train_state
  from sslax.train.step import state_sharding

  config = digits_config(arg)
  config.seed = seed
  config.lock()
  validate_config(config)
  result = train(config, workdir, progress=progress)
  method, mesh = result.method, result.mesh
  train_src = get_source(config.data, "train")
  test_src = get_source(config.data, "test")

  def probe(train_xy, test_xy):
    return linear_probe(*train_xy, *test_xy, seed=seed)["top1"]

  flat = lambda s: (s.images.reshape(len(s), -1).astype(np.float32) / 255.0, s.labels)
  random_state = jax.device_put(
      create_train_state(method, make_optimizer(config.optim, 1, config.train.batch_size), seed),
      state_sharding(mesh))
  pretrained_test = _features(method, result.state, mesh, config, test_src)
  report = {
      "seed": seed,
      "steps": int(result.report["steps"]),
      "raw_pixels_top1": probe(flat(train_src), flat(test_src)),
      "random_init_top1": probe(_features(method, random_state, mesh, config, train_src),
                                _features(method, random_state, mesh, config, test_src)),
      "simclr_top1": probe(_features(method, result.state, mesh, config, train_src), pretrained_test),
      "simclr_knn_top1": result.report["knn_top1"],
  }
  _plot_loss(workdir, os.path.join(workdir, "loss_curve.png"))
  _plot_embedding(pretrained_test[0], pretrained_test[1], os.path.join(workdir, "embedding_tsne.png"), seed)
  with open(os.path.join(workdir, "report.json"), "w") as f:
    json.dump(report, f, indent=2)
  lines = [
      "# sslax quickstart: SimCLR on scikit-learn digits",
      "",
      f"{report['steps']} pretraining steps, seed {seed}; linear probe top-1 on the held-out 540 digits:",
      "",
      "| features | linear-probe top-1 |",
      "|---|---|",
      f"| (a) raw pixels | {report['raw_pixels_top1']:.4f} |",
      f"| (b) same encoder, random init | {report['random_init_top1']:.4f} |",
      f"| (c) SimCLR encoder | {report['simclr_top1']:.4f} |",
      "",
      f"kNN (k={config.eval.knn_k}) top-1 of the SimCLR encoder: {report['simclr_knn_top1']:.4f}",
      "",
      "Plots: loss_curve.png, embedding_tsne.png",
  ]
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))
  print(f"\nreport written to {os.path.abspath(workdir)}/report.md")
  return report
