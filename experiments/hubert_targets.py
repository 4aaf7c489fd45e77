"""Which frames make good HuBERT targets: k-means of the MFCCs and of every layer of an iteration-1
run, at several cluster counts, scored by digit and speaker purity, cluster purity and PNMI
(`sslax.kmeans.label_stats`; Hsu et al. 2021, section IV-E, with digits in place of phones).

  python experiments/hubert_targets.py runs/speech_fsdd/hubert [--clusters 100 500]

The frames are the training split's first `method.kmeans_frames`, the k-means the one `refresh`
runs (same seed), so the rows of the chosen layer and count are the targets the iteration-2 run
trains on. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("workdir", help="an iteration-1 HuBERT run (experiments/hubert_fsdd.py:cpu)")
  p.add_argument("--clusters", type=int, nargs="+", default=[100, 500])
  args = p.parse_args(argv)

  import ml_collections
  from flax import nnx

  from sslax.augment.audio import normalize
  from sslax.data import eval_batches, get_source
  from sslax.kmeans import assign, kmeans, label_stats
  from sslax.methods import make_method
  from sslax.models.functional import copy_by_path, merge_model, split_model
  from sslax.train.pretrained import latest_weights

  with open(os.path.join(args.workdir, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  method = make_method(config)
  model = method.build_model(nnx.Rngs(params=0))
  graphdef, fresh, stats = split_model(model)
  step, params, _ = latest_weights(args.workdir)
  params, _ = copy_by_path(fresh, params)
  teacher = merge_model(graphdef, params, stats)

  @jax.jit
  def frames(audio, lengths):
    mfcc, _ = method.mfcc(audio, lengths)
    out = {"MFCC + deltas": mfcc}
    _, feats = teacher.encode(normalize(audio, lengths), lengths)
    out.update({k: v for k, v in feats.items() if k == "input" or k.startswith("layer_")})
    return out, feats["valid"]

  m = config.method
  data = get_source(config.data, config.data.train_split)
  collected, digits, speakers, seen = {}, [], [], 0
  for batch in eval_batches(data, batch_size=256, transform=method.inputs.transform(("label", "speaker"))):
    out, valid = jax.device_get(frames(jnp.asarray(batch["audio"]), jnp.asarray(batch["length"])))
    for name, x in out.items():  # MFCC frames beyond the conv frames' count are left out: one grid
      collected.setdefault(name, []).append(x[:, : valid.shape[1]][valid])
    digits.append(np.repeat(batch["label"], valid.sum(1)))
    speakers.append(np.repeat(batch["speaker"], valid.sum(1)))
    seen += int(valid.sum())
    if seen >= m.kmeans_frames:
      break
  y = {"digit": np.concatenate(digits)[: m.kmeans_frames], "speaker": np.concatenate(speakers)[: m.kmeans_frames]}
  key = jax.random.fold_in(jax.random.key(config.seed), 31)
  print(f"{args.workdir} (step {step}), {len(y['digit'])} training frames, {m.kmeans_iters} Lloyd steps")
  print()
  print("| frames | clusters | digit purity | digit cluster purity | digit PNMI | speaker purity | speaker PNMI |")
  print("|---|---|---|---|---|---|---|")
  for name, chunks in collected.items():
    x = jnp.asarray(np.concatenate(chunks)[: m.kmeans_frames])
    for k in args.clusters:
      centroids, _ = kmeans(key, x, k, m.kmeans_iters)
      z = np.asarray(assign(x, centroids))
      d, s = label_stats(z, y["digit"], k), label_stats(z, y["speaker"], k)
      print(f"| {name} | {k} | {d['purity']:.4f} | {d['cluster_purity']:.4f} | {d['pnmi']:.4f} "
            f"| {s['purity']:.4f} | {s['pnmi']:.4f} |", flush=True)


if __name__ == "__main__":
  main()
