"""The training loop: drives the one train step, logs, monitors, checkpoints, evaluates."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import warnings
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from sslax.config import validate_config
from sslax.data import get_source, record_transform, to_global, train_dataset
from sslax.data.pipeline import eval_batches, from_full_batch
from sslax.dispatch import OneStepAhead
from sslax.eval import collapse_alarm, extract_features_and_labels, knn_accuracy, linear_probe, make_feature_fn
from sslax.methods import make_method
from sslax.train.checkpoint import Checkpointer, check_run_fingerprint
from sslax.train.mesh import make_mesh, state_shardings
from sslax.train.metrics import MetricsWriter
from sslax.train.preemption import Preempted, PreemptionNotice
from sslax.train.state import TrainState, build_optimizer, create_train_state
from sslax.train.step import make_train_step

log = logging.getLogger("sslax")


class NonFiniteError(RuntimeError):
  """A step produced a non-finite loss, gradient or parameter under `train.nonfinite_policy=abort`."""


@dataclasses.dataclass
class TrainResult:
  state: TrainState
  method: Any
  mesh: Any
  report: dict
  workdir: str


def num_train_steps(config, num_examples: int) -> int:
  """`train.num_steps` if set, else `train.num_epochs` epochs of full global batches."""
  if config.train.num_steps > 0:
    return int(config.train.num_steps)
  return max(1, int(config.train.num_epochs * num_examples // config.train.batch_size))


def _check_inputs(method, source, config, num_devices: int) -> None:
  """Validates the shape every batch will have, before anything is compiled."""
  record = record_transform(config.data)(source[0])
  batch = {k: np.repeat(np.asarray(v)[None], config.train.batch_size, axis=0) for k, v in record.items()}
  method.validate_batch(batch, num_devices)


@dataclasses.dataclass
class EvalData:
  """What evaluation reads: the probe splits (labelled) and their per-record transform, and the
  held-out split of the pretraining data (for methods with a `heldout` metric, e.g. perplexity)."""
  probe_train: Any
  probe_test: Any
  transform: Any
  heldout: Any = None


def eval_data(config, train_source=None, eval_source=None) -> EvalData:
  """The probe splits: `eval.probe_data` (a data config of its own, e.g. SST-2 for a model
  pretrained on other text) when set, else the pretraining data's train and eval splits."""
  train_source = train_source if train_source is not None else get_source(config.data, config.data.train_split)
  eval_source = eval_source if eval_source is not None else get_source(config.data, config.data.eval_split)
  probe = probe_data_config(config)
  if probe is not None:
    return EvalData(get_source(probe, probe.train_split), get_source(probe, probe.eval_split),
                    record_transform(probe), heldout=eval_source)
  if config.data.get("seq_len"):  # unlabelled token rows: held-out metrics only
    return EvalData(None, None, None, heldout=eval_source)
  return EvalData(train_source, eval_source, record_transform(config.data), heldout=eval_source)


def probe_data_config(config):
  """`eval.probe_data` completed from the pretraining data: token data is read with the same
  tokenizer, special ids, framing and row length (unless it sets its own)."""
  probe = config.eval.get("probe_data")
  if not probe:
    return None
  probe = ml_collections.ConfigDict(probe.to_dict())
  if config.data.get("seq_len"):
    from sslax.data.tokenize import tokenizer_cache_path

    spec = config.data.tokenizer
    inherited = {"tokenizer": tokenizer_cache_path(config.data) if spec in ("wordpiece", "bpe") else spec,
                 "special_ids": config.data.special_ids.to_dict(), "framing": config.data.framing,
                 "seq_len": config.data.seq_len, "vocab_size": config.data.vocab_size,
                 "data_dir": config.data.get("data_dir")}
    for key, value in inherited.items():
      if probe.get(key) is None:
        probe[key] = value
  return probe


def heldout_metrics(method, state, mesh, config, source) -> dict[str, float]:
  """A method's held-out metrics (`method.heldout`, e.g. perplexity) over every row of `source`,
  weighted by their counts; random draws (BERT's masks) come from `config.seed`, so repeatable."""
  def fn(params, batch_stats, inputs, key, graphdef):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    return method.heldout(model, inputs, key)

  replicated = NamedSharding(mesh, PartitionSpec())
  jitted = jax.jit(fn, static_argnums=(4,), out_shardings=replicated)  # params keep their layout
  n_dev = mesh.devices.size
  batch_size = max(n_dev, config.eval.batch_size // n_dev * n_dev)
  sums: dict[str, list[float]] = {}
  for i, batch in enumerate(eval_batches(source, batch_size=batch_size, transform=record_transform(config.data))):
    inputs = {k: np.asarray(batch[k]) for k in method.input_keys}
    pad = (-len(inputs["segments"])) % n_dev
    if pad:  # padding rows have no real token, so they add nothing to the sums
      inputs = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in inputs.items()}
    inputs = {k: from_full_batch(v, mesh) for k, v in inputs.items()}
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


def evaluate(method, state, mesh, config, train_source, eval_source, *, max_train: int | None = None,
             probe: bool = True, feature_fn=None, transform=None, heldout_source=None) -> dict[str, float]:
  """kNN (and optionally linear-probe) top-1 of the frozen encoder on the evaluation split, and the
  method's held-out metrics on `heldout_source` when it has them."""
  out = {}
  if heldout_source is not None and hasattr(method, "heldout"):
    out.update(heldout_metrics(method, state, mesh, config, heldout_source))
  if train_source is None:  # no labelled data to probe
    return out
  max_train = max_train or config.eval.get("max_train") or None
  if max_train and len(train_source) > max_train:
    train_source = grain.MapDataset.source(train_source)[:max_train]
  label_keys = ("label", *config.eval.get("extra_labels", ()))
  kw = dict(batch_size=config.eval.batch_size, transform=transform or record_transform(config.data),
            feature_fn=feature_fn, label_keys=label_keys)
  train_x, train_y = extract_features_and_labels(method, state, train_source, mesh, **kw)
  test_x, test_y = extract_features_and_labels(method, state, eval_source, mesh, **kw)
  for key in label_keys:  # "label" reports as knn_top1 / linear_top1, others as <key>/knn_top1 ...
    prefix = "" if key == "label" else f"{key}/"
    out[f"{prefix}knn_top1"] = knn_accuracy(train_x, train_y[key], test_x, test_y[key], k=config.eval.knn_k,
                                            temperature=config.eval.knn_temperature)
    if probe:
      out[f"{prefix}linear_top1"] = linear_probe(train_x, train_y[key], test_x, test_y[key],
                                                 seed=config.seed)["top1"]
  return out


def make_checkpointer(config, workdir: str) -> Checkpointer:
  return Checkpointer(workdir, save_every=config.train.checkpoint_every, max_to_keep=config.train.keep_checkpoints,
                      async_save=config.train.async_checkpoint, on_corrupt=config.train.on_corrupt_checkpoint)


def _check_finite(state, config, writer, step: int, metrics=None) -> None:
  """Under `abort`, stops before any further checkpoint once a step was non-finite (the step itself
  already dropped that update, so no state leaf is non-finite)."""
  bad = int(jax.device_get(state.nonfinite_steps))
  if bad and config.train.nonfinite_policy == "abort":
    record = {k: float(v) for k, v in jax.device_get(metrics or {}).items()}
    writer.write(step, {**record, "nonfinite_steps": float(bad)})
    raise NonFiniteError(f"step {step}: {bad} step(s) had a non-finite loss, gradient or parameter "
                         "(train.nonfinite_policy='abort'); the last committed checkpoint is kept. "
                         "Set train.nonfinite_policy='skip' to drop such steps and go on")


def train(config, workdir: str, *, progress: bool = True, stop_at: int | None = None) -> TrainResult | None:
  """Runs (or resumes) pretraining as `config` says, writing everything under `workdir`.

  Writes the resolved config, metrics.jsonl, TensorBoard events, Orbax
  checkpoints (resumed automatically) and `report.json` with the final kNN
  and linear-probe top-1 on the evaluation split.

  `stop_at` stops after that step with a committed checkpoint and no
  evaluation (returns None), as a preempted job would; running again resumes.
  """
  validate_config(config)
  warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
  os.makedirs(workdir, exist_ok=True)
  mesh = make_mesh(config.mesh)
  method = make_method(config)
  train_source = get_source(config.data, config.data.train_split)
  eval_source = get_source(config.data, config.data.eval_split)
  _check_inputs(method, train_source, config, mesh.devices.size)
  evals = eval_data(config, train_source, eval_source)

  total = num_train_steps(config, len(train_source))
  optimizer = build_optimizer(method, config, total)
  state = create_train_state(method, optimizer, config.seed)
  shardings = state_shardings(state, mesh, config.get("sharding"))
  state = jax.device_put(state, shardings)
  iterator = iter(train_dataset(train_source, global_batch_size=config.train.batch_size,
                                seed=config.seed, transform=record_transform(config.data), mesh=mesh))
  checkpointer = make_checkpointer(config, workdir)
  if checkpointer.latest_step() is not None:
    check_run_fingerprint(checkpointer.directory, config, allow_changes=config.train.allow_resume_changes)
    state, iterator = checkpointer.restore(state, iterator)
    log.info("resumed from step %d", int(state.step))
  else:
    check_run_fingerprint(checkpointer.directory, config, allow_changes=True)
  if jax.process_index() == 0:  # one writer: the processes may share the workdir
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  step_fn = make_train_step(method, optimizer, mesh, shardings)
  feature_fn = make_feature_fn(method, mesh)
  writer = MetricsWriter(workdir)
  start = int(jax.device_get(state.step))
  skipped = len(getattr(train_source, "skipped_examples", ()))
  if skipped:
    writer.write(start, {"data/skipped_examples": float(skipped)})
  bar = tqdm(total=total, initial=start, disable=not progress or jax.process_index() != 0,
             desc=f"{config.method.name}", dynamic_ncols=True)
  last_time, last_step = time.perf_counter(), start
  notice = PreemptionNotice().__enter__()
  try:
    try:
      ahead = OneStepAhead()  # an unbounded queue of steps deadlocks XLA:CPU's collectives (sslax/dispatch.py)
      for step in range(start, total):
        batch = to_global(next(iterator), mesh)
        state, metrics = step_fn(state, batch)
        ahead(metrics)
        done = step + 1
        logging_now = done % config.train.log_every == 0 or done == total
        if logging_now or checkpointer.should_save(done):
          _check_finite(state, config, writer, done, metrics)
        if logging_now:
          metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
          metrics["nonfinite_steps"] = float(jax.device_get(state.nonfinite_steps))
          now = time.perf_counter()
          metrics["examples_per_sec"] = (done - last_step) * config.train.batch_size / (now - last_time)
          last_time, last_step = now, done
          if collapse_alarm(metrics, std_ratio_threshold=config.monitor.collapse_std_ratio,
                            rank_threshold=config.monitor.collapse_rank):
            metrics["collapse/alarm"] = 1.0
            log.warning("step %d: the embeddings look collapsed (std * sqrt(d) = %.4f, effective rank = %.2f)",
                        done, metrics["collapse/std_ratio"], metrics["collapse/rank"])
            warnings.warn(f"step {done}: collapse alarm (std * sqrt(d) = {metrics['collapse/std_ratio']:.4f}, "
                          f"effective rank = {metrics['collapse/rank']:.2f})", RuntimeWarning)
          writer.write(done, metrics)
          bar.set_postfix(loss=f"{metrics['loss']:.4f}", ex_s=f"{metrics['examples_per_sec']:.0f}")
        if config.train.knn_every and done % config.train.knn_every == 0 and done < total:
          try:
            with notice.interruptible():
              # kNN top-1 on the probe data; without probe data (a language model on unlabelled
              # text) the held-out metrics instead
              monitor = evaluate(method, state, mesh, config, evals.probe_train, evals.probe_test, probe=False,
                                 max_train=config.eval.monitor_max_train, feature_fn=feature_fn,
                                 transform=evals.transform,
                                 heldout_source=evals.heldout if evals.probe_train is None else None)
            writer.write(done, {f"monitor/{k}": v for k, v in monitor.items()})
            bar.write(f"step {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in monitor.items()))
          except Preempted:
            pass  # the notice stays set: the step is committed just below
          last_time = time.perf_counter()  # throughput counts train steps only
        checkpointer.save(state, iterator)
        bar.update(1)
        if notice.requested:
          _check_finite(state, config, writer, done)
          checkpointer.save(state, iterator, force=True)
          checkpointer.wait()
          raise Preempted(f"step {done}: stopped by a preemption notice (SIGTERM) with step {done} committed; "
                          "run the same command again to resume")
        if stop_at is not None and done >= stop_at:
          break
      _check_finite(state, config, writer, int(jax.device_get(state.step)))
      checkpointer.save(state, iterator, force=True)
    finally:
      bar.close()
      checkpointer.close()
      writer.close()

    if int(jax.device_get(state.step)) < total:
      return None
    with notice.interruptible():  # the final step is committed: a notice may stop evaluation at once
      report = evaluate(method, state, mesh, config, evals.probe_train, evals.probe_test,
                        probe=config.eval.linear_probe, feature_fn=feature_fn, transform=evals.transform,
                        heldout_source=evals.heldout)
  finally:
    notice.__exit__(None, None, None)
  report["steps"] = total
  if skipped:
    report["data/skipped_examples"] = skipped
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "report.json"), "w") as f:
      json.dump(report, f, indent=2)
  return TrainResult(state=state, method=method, mesh=mesh, report=report, workdir=workdir)
