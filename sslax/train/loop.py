"""The training loop: drives the one train step, logs, monitors, checkpoints, evaluates."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import time
import warnings
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from sslax.config import validate_config
from sslax.data import get_source, to_global, train_dataset
from sslax.dispatch import OneStepAhead
from sslax.eval import EvalData, EvalRun, collapse_alarm, make_feature_fn
from sslax.methods import make_method
from sslax.paths import join, write_text
from sslax.train.checkpoint import Checkpointer, check_run_fingerprint, save_run_fingerprint
from sslax.train.mesh import make_mesh
from sslax.train.metrics import MetricsWriter
from sslax.train.preemption import Preempted, PreemptionNotice
from sslax.train.pretrained import init_from
from sslax.train.state import TrainState, abstract_train_state, build_optimizer, init_train_state
from sslax.train.step import activation_constraints, make_train_step
from sslax.train.workdir import WorkdirLock, check_workdir

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
  size = config.train.batch_size
  if size % num_devices:
    raise ValueError(f"train.batch_size: expected a multiple of the {num_devices} devices the batch is split over, "
                     f"got {size} (e.g. {max(num_devices, size // num_devices * num_devices)})")
  record = method.inputs.transform()(source[0])
  batch = {k: np.repeat(np.asarray(v)[None], config.train.batch_size, axis=0) for k, v in record.items()}
  method.validate_batch(batch, num_devices)


def eval_data(config, method, train_source=None, eval_source=None) -> EvalData:
  """The run's evaluation data: the probe splits of `method.probe_data()` (a data config of its
  own, e.g. SST-2 for a model pretrained on other text) when set, else the pretraining data's
  train and eval splits when its records are labelled; the eval split is the held-out split."""
  train_source = train_source if train_source is not None else get_source(config.data, config.data.train_split)
  eval_source = eval_source if eval_source is not None else get_source(config.data, config.data.eval_split)
  probe = method.probe_data()
  if probe is not None:
    return EvalData(train_source, get_source(probe, probe.train_split), get_source(probe, probe.eval_split),
                    heldout=eval_source)
  if not method.inputs.labelled:  # unlabelled records (token rows): held-out metrics only
    return EvalData(train_source, heldout=eval_source)
  return EvalData(train_source, train_source, eval_source, heldout=eval_source)


def evaluate(method, state, mesh, config, data: EvalData, *, monitor: bool = False, linear_probe: bool | None = None,
             feature_fn=None, workdir: str | None = None) -> dict[str, float]:
  """Runs the method's evaluators on `data`: all of them at the end of a run, those with
  `monitor` every `train.knn_every` steps (see `sslax.eval.context`). `linear_probe`: whether
  the linear probe runs (default `eval.linear_probe`); `workdir`: where drawing evaluators
  write their files (the run's workdir at the end of a run)."""
  run = EvalRun(method, state, mesh, config, data, monitor=monitor, linear_probe=linear_probe,
                feature_fn=feature_fn, workdir=workdir)
  out: dict[str, float] = {}
  for evaluator in method.evaluators():
    if evaluator.monitor or not monitor:
      out.update(evaluator(run))
  return out


def _refresh(method, state, data: EvalData, mesh, step: int, shardings):
  """`method.refresh` before step `step`, its result put back on the state's shardings; the
  method state must keep its structure, shapes and dtypes (the compiled step is reused)."""
  new = method.refresh(state, data, mesh, step)
  before = jax.tree.map(lambda x: (np.shape(x), np.dtype(x.dtype)), state.method_state)
  after = jax.tree.map(lambda x: (np.shape(x), np.dtype(x.dtype)), new.method_state)
  if jax.tree.structure(before) != jax.tree.structure(after) or before != after:
    raise ValueError(f"method.refresh: expected a method_state like {before}, got {after} "
                     f"({type(method).__name__}.refresh at step {step})")
  return jax.device_put(new, shardings)


def make_checkpointer(config, workdir: str) -> Checkpointer:
  return Checkpointer(workdir, save_every=config.train.checkpoint_every, max_to_keep=config.train.keep_checkpoints,
                      async_save=config.train.async_checkpoint, on_corrupt=config.train.on_corrupt_checkpoint,
                      hashes=config.train.get("checkpoint_hashes", "auto"))


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


def _host_sync_guard(on: bool):
  """`train.guard_host_sync`: device-to-host reads raise inside a steady-state step."""
  return jax.transfer_guard_device_to_host("disallow_explicit") if on else contextlib.nullcontext()


def train(config, workdir: str, *, progress: bool = True, stop_at: int | None = None, method=None,
          sources=None) -> TrainResult | None:
  """Runs (or resumes) pretraining as `config` says, writing everything under `workdir`.

  Writes the resolved config, metrics.jsonl, TensorBoard events, Orbax
  checkpoints (resumed automatically) and `report.json` with the final kNN
  and linear-probe top-1 on the evaluation split.

  `train.init_from` starts named parts of the network from other runs' checkpoints
  (`sslax.train.pretrained`) when the workdir has none of its own.

  `stop_at` stops after that step with a committed checkpoint and no
  evaluation (returns None), as a preempted job would; running again resumes.
  `method` (default `make_method(config)`) and `sources` ((train, eval) random-access sources;
  default `config.data`'s splits) let a caller run a method it built itself, e.g. a downstream
  task holding pretrained weights on a few labelled examples (`sslax finetune`).
  """
  validate_config(config)
  if stop_at is not None and (isinstance(stop_at, bool) or not isinstance(stop_at, int) or stop_at < 1):
    raise ValueError(f"--stop_at: expected a step >= 1, got {stop_at!r}")
  workdir = check_workdir(workdir)
  with WorkdirLock(workdir, jax.process_index()):  # one run per workdir; a second is refused, naming this one
    return _train(config, workdir, progress=progress, stop_at=stop_at, method=method, sources=sources)


def _train(config, workdir: str, *, progress: bool, stop_at: int | None, method, sources) -> TrainResult | None:
  warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
  mesh = make_mesh(config.mesh)
  method = method if method is not None else make_method(config)
  if sources is not None:
    train_source, eval_source = sources
  else:
    train_source = get_source(config.data, config.data.train_split)
    eval_source = get_source(config.data, config.data.eval_split)
  _check_inputs(method, train_source, config, mesh.devices.size)
  evals = eval_data(config, method, train_source, eval_source)

  total = num_train_steps(config, len(train_source))
  optimizer = build_optimizer(method, config, total)
  # shapes and shardings only: a resumed run reads its state straight into them, and a fresh one
  # materializes each device's shards where they live (sharded init, `init_train_state`)
  abstract, shardings = abstract_train_state(method, optimizer, config.seed, mesh, config.get("sharding"))
  checkpointer = make_checkpointer(config, workdir)
  iterator = iter(train_dataset(train_source, global_batch_size=config.train.batch_size,
                                seed=config.seed, transform=method.inputs.transform(), mesh=mesh))
  restored = None
  if checkpointer.latest_step() is not None:
    check_run_fingerprint(checkpointer.directory, config, allow_changes=config.train.allow_resume_changes)
    # None: every step failed its check and was set aside ('fallback'); a fresh start, said so
    restored = checkpointer.restore(abstract, iterator)
  if restored is None:
    state = init_train_state(method, optimizer, config.seed, shardings)
    if config.train.get("init_from"):  # parts from other runs
      state = init_from(state, config.train.init_from)
      state = state.replace(opt_state=optimizer.init(state.params))  # an EMA target starts from them too
      state = jax.device_put(state, shardings)
  else:
    state, iterator = restored
    resumed = int(jax.device_get(state.step))
    # a smaller target would skip training and report a model of `resumed` steps as `total`
    if resumed > total:
      raise ValueError(f"train.num_steps: expected at least {resumed}, the step of the checkpoint in "
                       f"{checkpointer.directory}, got a run of {total} steps")
    if stop_at is not None and stop_at <= resumed:
      raise ValueError(f"--stop_at: expected a step after {resumed}, the step of the checkpoint in "
                       f"{checkpointer.directory}, got {stop_at}")
    log.info("resumed from step %d", resumed)
  save_run_fingerprint(checkpointer.directory, config)
  if jax.process_index() == 0:  # one writer: the processes may share the workdir
    write_text(join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  constrain = activation_constraints(config, shardings)
  step_fn = make_train_step(method, optimizer, mesh, shardings, constrain_activations=constrain)
  feature_fn = make_feature_fn(method, mesh, constrain_activations=constrain)
  writer = MetricsWriter(workdir)
  start = int(jax.device_get(state.step))
  skipped = len(getattr(train_source, "skipped_examples", ()))
  if skipped:
    writer.write(start, {"data/skipped_examples": float(skipped)})
  bar = tqdm(total=total, initial=start, disable=not progress or jax.process_index() != 0,
             desc=f"{config.method.name}", dynamic_ncols=True)
  last_time, last_step = time.perf_counter(), start
  # Several processes: SIGTERM may reach only some of them, so the notice goes through JAX's
  # preemption service (its SIGTERM handler tells the coordinator, and every process learns the
  # same step to stop at from `reached_preemption`); a Python handler here would replace it.
  agreed = jax.process_count() > 1
  notice = PreemptionNotice(signals=() if agreed else (signal.SIGTERM,)).__enter__()
  try:
    try:
      ahead = OneStepAhead()  # an unbounded queue of steps deadlocks XLA:CPU's collectives (sslax/dispatch.py)
      refresh_every = method.refresh_every
      guard = bool(config.train.get("guard_host_sync", False))
      for step in range(start, total):
        if refresh_every and step % refresh_every == 0:
          state = _refresh(method, state, evals, mesh, step, shardings)
        done = step + 1
        logging_now = done % config.train.log_every == 0 or done == total
        saving = checkpointer.should_save(done)
        monitoring = bool(config.train.knn_every) and done % config.train.knn_every == 0 and done < total
        steady = guard and not (logging_now or saving or monitoring or done == stop_at)
        with _host_sync_guard(steady):
          batch = to_global(next(iterator), mesh)
          state, metrics = step_fn(state, batch)
          ahead(metrics)
        if logging_now or saving:
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
        if monitoring:
          try:
            with notice.interruptible():  # the method's monitoring evaluators (kNN, held-out perplexity)
              monitor = evaluate(method, state, mesh, config, evals, monitor=True, feature_fn=feature_fn)
            writer.write(done, {f"monitor/{k}": v for k, v in monitor.items()})
            bar.write(f"step {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in monitor.items()))
          except Preempted:
            pass  # the notice stays set: the step is committed just below
          last_time = time.perf_counter()  # throughput counts train steps only
        with _host_sync_guard(steady):
          # every process calls this every step, as JAX's preemption sync point needs
          agreed_stop = agreed and checkpointer.reached_preemption(done)
          checkpointer.save(state, iterator, step=done)
        bar.update(1)
        if notice.requested or agreed_stop:  # a notice during that save stops at this step
          _check_finite(state, config, writer, done)
          checkpointer.save(state, iterator, step=done, force=True)
          checkpointer.wait()
          raise Preempted(f"step {done}: stopped by a preemption notice (SIGTERM"
                          f"{' to one of the processes' if agreed else ''}) with step {done} committed; "
                          "run the same command again to resume")
        if stop_at is not None and done >= stop_at:
          break
      final = int(jax.device_get(state.step))
      _check_finite(state, config, writer, final)
      checkpointer.save(state, iterator, step=final, force=True)
    finally:
      bar.close()
      checkpointer.close()
      writer.close()

    if int(jax.device_get(state.step)) < total:
      return None
    with notice.interruptible():  # the final step is committed: a notice may stop evaluation at once
      report = evaluate(method, state, mesh, config, evals, feature_fn=feature_fn,
                        workdir=workdir if jax.process_index() == 0 else None)
  finally:
    notice.__exit__(None, None, None)
  report["steps"] = total
  if skipped:
    report["data/skipped_examples"] = skipped
  if jax.process_index() == 0:
    write_text(join(workdir, "report.json"), json.dumps(report, indent=2))
  return TrainResult(state=state, method=method, mesh=mesh, report=report, workdir=workdir)
