"""Held-out metrics of the pretraining objective itself (masked-LM loss, perplexity) on the
pretraining data's evaluation split."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from sslax.data.pipeline import eval_batches, from_full_batch, pad_rows
from sslax.models.functional import merge_model


def real_rows(images: jax.Array) -> jax.Array:
  """[B] 1.0 for the real rows of an image batch [B, H, W, C], 0.0 for the padding rows that
  `HeldoutMetrics` adds (all zeros), for a method's `heldout` to weight its sums with."""
  return jnp.any(images != 0, axis=(1, 2, 3)).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class HeldoutMetrics:
  """Evaluator: `method.heldout(model, inputs, key) -> {name: (sum, count)}` summed over every
  row of the held-out split and reported as `heldout/<name>` = sum / count; an `lm_loss` adds
  `heldout/perplexity` = exp(lm_loss). Random draws (BERT's masks) come from `config.seed`, so
  the figure repeats. Padding rows are zeros: they hold no real token and add nothing."""
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    if run.data.heldout is None:
      return {}
    method, state, mesh, config = run.method, run.state, run.mesh, run.config

    def fn(params, batch_stats, inputs, key, graphdef):
      return method.heldout(merge_model(graphdef, params, batch_stats), inputs, key)

    replicated = NamedSharding(mesh, PartitionSpec())
    jitted = jax.jit(fn, static_argnums=(4,), out_shardings=replicated)  # params keep their layout
    n_dev = mesh.devices.size
    batch_size = max(n_dev, config.eval.batch_size // n_dev * n_dev)
    sums: dict[str, list[float]] = {}
    batches = eval_batches(run.data.heldout, batch_size=batch_size, transform=method.inputs.transform())
    for i, batch in enumerate(batches):
      inputs = {k: from_full_batch(pad_rows(batch[k], n_dev, fill="zeros"), mesh) for k in method.inputs.keys}
      key = jax.device_put(jax.random.fold_in(jax.random.PRNGKey(config.seed), i), replicated)
      out = jax.device_get(jitted(state.params, state.batch_stats, inputs, key, state.graphdef))
      for name, (total, count) in out.items():
        acc = sums.setdefault(name, [0.0, 0.0])
        acc[0] += float(total)
        acc[1] += float(count)
    report = {f"heldout/{name}": total / max(count, 1.0) for name, (total, count) in sums.items()}
    if "heldout/lm_loss" in report:
      report["heldout/perplexity"] = float(np.exp(report["heldout/lm_loss"]))
    if sums:
      report["heldout/num_targets"] = next(iter(sums.values()))[1]
    return report
