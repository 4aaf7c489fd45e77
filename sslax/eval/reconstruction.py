"""Reconstructions of held-out images drawn into the run's workdir: what a masked-image or
denoising method was asked to fill in, and what it filled in."""
from __future__ import annotations

import dataclasses
import io

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sslax.data.pipeline import eval_batches, from_full_batch, pad_rows
from sslax.models.functional import merge_model
from sslax.paths import join


def reconstruction_grid(rows: dict[str, np.ndarray], path: str, title: str = "") -> None:
  """Writes a PNG with one column per image and one row per entry of `rows` ({name: [n, H, W, C]
  floats in [0, 1]}), the row names on the left; `path` local or on an object store."""
  from etils import epath

  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = list(rows)
  n = len(next(iter(rows.values())))
  fig, axes = plt.subplots(len(names), n, figsize=(1.1 * n + 1.2, 1.15 * len(names) + 0.4), squeeze=False)
  for r, name in enumerate(names):
    for i in range(n):
      ax = axes[r, i]
      img = np.clip(rows[name][i], 0.0, 1.0)
      ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                vmin=0.0, vmax=1.0, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_ylabel(name, fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, format="png", dpi=110)
  plt.close(fig)
  epath.Path(path).write_bytes(png.getvalue())


@dataclasses.dataclass(frozen=True)
class Reconstructions:
  """Evaluator: `method.reconstruct(model, inputs, key) -> {row name: [n, H, W, C] in [0, 1]}` on
  the first `num_images` held-out images, drawn as `<workdir>/reconstructions.png` (one row per
  name: the input, what the model saw, its reconstruction). The masks come from `config.seed`, so
  the picture repeats. Returns {"reconstructions/num_images": n}; nothing is drawn without a
  workdir or a held-out split."""
  num_images: int = 12
  filename: str = "reconstructions.png"
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.heldout is None or run.workdir is None:
      return {}
    method, state, mesh, config = run.method, run.state, run.mesh, run.config
    n_dev = mesh.devices.size
    batch = next(eval_batches(run.data.heldout, batch_size=self.num_images, transform=method.inputs.transform()))
    n = len(batch[method.inputs.keys[0]])
    inputs = {k: from_full_batch(pad_rows(batch[k], n_dev), mesh) for k in method.inputs.keys}
    replicated = NamedSharding(mesh, PartitionSpec())

    def fn(params, batch_stats, inputs, key, graphdef):
      return method.reconstruct(merge_model(graphdef, params, batch_stats), inputs, key)

    key = jax.device_put(jax.random.PRNGKey(config.seed), replicated)
    rows = jax.device_get(jax.jit(fn, static_argnums=(4,), out_shardings=replicated)(
        state.params, state.batch_stats, inputs, key, state.graphdef))
    # a dict comes back with its keys sorted (pytree order): the input first, the reconstruction last
    order = sorted(rows, key=lambda k: (k != "input", k == "reconstruction", k))
    rows = {name: np.asarray(rows[name])[:n] for name in order}
    reconstruction_grid(rows, join(run.workdir, self.filename),
                        title=f"{method.name}: held-out images, step {int(jax.device_get(state.step))}")
    return {"reconstructions/num_images": float(n)}
