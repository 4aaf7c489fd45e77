"""`sslax train | eval | finetune | export | generate | fewshot | plan | bench | quickstart`."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def _load(args):
  from sslax.config import apply_overrides, load_config, validate_config

  config = load_config(args.config)
  apply_overrides(config, args.set or [])
  return validate_config(config)


def _train(args) -> int:
  import jax

  from sslax.train.loop import train

  result = train(_load(args), args.workdir, progress=not args.no_progress, stop_at=args.stop_at)
  if result is None:  # --stop_at: committed, not finished
    print(f"sslax train: stopped after step {args.stop_at} with it committed; run again without --stop_at "
          "to continue", file=sys.stderr)
    return 0
  if jax.process_index() == 0:
    print(json.dumps(result.report, indent=2))
  return 0


def _restore(args, config):
  """(method, mesh, state, train split, eval split): the workdir's latest checkpoint, or with
  `--random_init` the same network at random initialization (seed from the config)."""
  from sslax.data import get_source, train_dataset
  from sslax.methods import make_method
  from sslax.train import build_optimizer, make_mesh
  from sslax.train.checkpoint import STRUCTURE_SECTIONS, fingerprint_changes
  from sslax.train.loop import make_checkpointer, num_train_steps
  from sslax.train.state import abstract_train_state, init_train_state

  init_from = config.get("model", {}).get("init_from")
  if init_from and args.random_init:
    raise ValueError(f"--random_init: expected no model.init_from with it (the network would start from "
                     f"{init_from!r}, not at random), got both")
  # imported weights without a workdir: the network as model.init_from gives it (create_train_state)
  from_checkpoint = not args.random_init and not (init_from and not args.workdir)
  if from_checkpoint:  # before anything is created, prepared or compiled
    if not args.workdir:
      raise ValueError("--workdir: expected a workdir with checkpoints (or pass --random_init), got none")
    from etils import epath

    directory = os.path.join(args.workdir, "checkpoints")  # a folder or gs:// (sslax.paths)
    folder = epath.Path(directory)
    if not folder.is_dir() or not any(d.name.isdigit() for d in folder.iterdir()):
      raise ValueError(f"--workdir: expected checkpoints under {directory}, found none")
    changed = fingerprint_changes(directory, config, STRUCTURE_SECTIONS)
    if changed:
      raise ValueError(f"--config: the checkpoints in {directory} were written with another method or model "
                       f"({'; '.join(changed)}); pass the config the run was trained with")
  mesh = make_mesh(config.mesh)
  method = make_method(config)
  train_src = get_source(config.data, config.data.train_split)
  eval_src = get_source(config.data, config.data.eval_split)
  optimizer = build_optimizer(method, config, num_train_steps(config, len(train_src)))
  abstract, shardings = abstract_train_state(method, optimizer, config.seed, mesh, config.get("sharding"))
  if not from_checkpoint:  # a restore reads straight into the abstract state's shardings
    state = init_train_state(method, optimizer, config.seed, shardings)
  else:
    ckpt = make_checkpointer(config, args.workdir)
    if ckpt.latest_step() is None:
      raise ValueError(f"--workdir: expected checkpoints under {ckpt.directory}, found none")
    step = getattr(args, "step", None)
    if step is not None and step not in ckpt.manager.all_steps():
      raise ValueError(f"--step: expected one of the saved steps {sorted(ckpt.manager.all_steps())}, got {step}")
    iterator = iter(train_dataset(train_src, global_batch_size=config.train.batch_size, seed=config.seed,
                                  transform=method.inputs.transform()))
    state, _ = ckpt.restore(abstract, iterator, step=step)
    ckpt.close()
  return method, mesh, state, train_src, eval_src


def _init_name(args, config) -> str:
  init_from = config.get("model", {}).get("init_from")
  if args.random_init:
    return "random"
  return f"init_from:{init_from}" if init_from and not args.workdir else "checkpoint"


def _report(args, report) -> int:
  report.setdefault("init", "random" if args.random_init else "checkpoint")
  print(json.dumps(report, indent=2))
  if args.output:
    with open(args.output, "w") as f:
      json.dump(report, f, indent=2)
  return 0


def _eval(args) -> int:
  """Reports kNN / linear-probe top-1 of a workdir's latest checkpoint, or with
  `--random_init` of the same encoder at random initialization (the baseline)."""
  from sslax.train.loop import eval_data, evaluate

  config = _load(args)
  method, mesh, state, train_src, eval_src = _restore(args, config)
  report = evaluate(method, state, mesh, config, eval_data(config, method, train_src, eval_src), linear_probe=True)
  report["step"] = int(state.step)
  report["init"] = _init_name(args, config)
  return _report(args, report)


def _export(args) -> int:
  """Writes the encoder of a workdir's checkpoint (the latest, or `--step`) in the layout of its
  PyTorch counterpart (torchvision ResNet, timm ViT, Hugging Face BERT / GPT-2 / wav2vec 2.0; see
  `sslax.weights`), with its config.json and the run's tokenizer when it has one."""
  import shutil

  from sslax.weights import export_encoder

  config = _load(args)
  if args.random_init:
    raise ValueError("--random_init: export writes a trained checkpoint; pass --workdir")
  if os.path.isdir(args.output) and os.listdir(args.output) and not args.overwrite:
    raise ValueError(f"--output: expected a new or empty directory (or --overwrite), got {args.output!r} "
                     f"holding {sorted(os.listdir(args.output))[:3]}")
  method, _, state, _, _ = _restore(args, config)
  info = export_encoder(state.model(), args.output, heads=args.heads, path=args.path,
                        meta={"workdir": os.path.abspath(args.workdir), "step": int(state.step),
                              "method": config.method.name, "model": config.model.get("name")})
  report = {"output": args.output, "step": int(state.step), "layout": info["layout"],
            "encoder_path": info["path"], "num_tensors": info["num_tensors"]}
  tokenizer = os.path.join(args.workdir, "tokenizer.json")
  if os.path.exists(tokenizer):  # text runs: the vocabulary the embeddings index
    shutil.copy(tokenizer, os.path.join(args.output, "tokenizer.json"))
    with open(os.path.join(args.output, "tokenizer_config.json"), "w") as f:
      json.dump({"tokenizer_class": "PreTrainedTokenizerFast"}, f)
    report["tokenizer"] = "tokenizer.json"
  print(json.dumps(report, indent=2))
  return 0


def _with_adapters(config, params, adapter_dim: int):
  """The network rebuilt with bottleneck adapters of `adapter_dim` in every block: every pretrained
  parameter copied in by path, the adapters freshly initialized (the identity). Returns (params,
  graphdef)."""
  import jax
  from flax import nnx

  from sslax.methods import make_method
  from sslax.methods.downstream import load_pretrained
  from sslax.models.functional import split_model

  _check_adapters(config, adapter_dim)
  with_adapters = type(config)(config.to_dict())
  with_adapters.model.adapter_dim = adapter_dim
  model = make_method(with_adapters).build_model(nnx.Rngs(config.seed))
  load_pretrained(model, (jax.device_get(params), nnx.state(model, nnx.BatchStat)))
  graphdef, copied, _ = split_model(model)
  return copied, graphdef


def _check_adapters(config, adapter_dim: int) -> None:
  if adapter_dim and "adapter_dim" not in config.model:
    raise ValueError(f"finetune.adapter_dim: expected 0 for model.name={config.model.name!r} (adapters exist for "
                     f"the Transformer language models), got {adapter_dim}")


def finetune_config(config, data_config, *, backbone: str, task: str, num_classes: int, batch_size: int,
                    tag_names=None):
  """The config of a fine-tuning run: the pretraining `config` on `data_config` (the labelled
  data), `method.name = task` ('classify' or 'tag') over `method.backbone`, AdamW with warm-up
  and cosine decay to 0 as `finetune.*` says, parameter masks for `finetune.freeze` and (with
  adapters) `finetune.train_only`; the head is always trained."""
  import ml_collections

  from sslax.config import base_config

  ft = config.finetune
  c = ml_collections.ConfigDict(config.to_dict())
  c.data = ml_collections.ConfigDict(data_config.to_dict())
  c.method.backbone, c.method.name = backbone, task
  c.finetune.num_classes, c.finetune.tag_names = int(num_classes), tuple(tag_names or ())
  if ft.adapter_dim:
    c.model.adapter_dim = int(ft.adapter_dim)
  c.optim = base_config().optim
  c.optim.update({"name": "adamw", "lr": ft.lr, "scale_lr_with_batch": False, "weight_decay": ft.weight_decay,
                  "warmup_steps": ft.warmup_steps, "final_lr_fraction": 0.0, "grad_clip_norm": 0.0})
  c.optim.freeze = tuple(ft.freeze)
  c.optim.train_only = tuple(ft.train_only) if ft.adapter_dim else ()
  c.optim.always = ("head",)
  c.train.update({"num_steps": int(ft.steps), "batch_size": int(batch_size), "log_every": max(1, ft.steps // 10),
                  "checkpoint_every": max(1, ft.steps // 2), "knn_every": 0})
  c.eval.linear_probe = False
  c.lock()
  return c


def _finetune(args) -> int:
  """Fine-tunes the network with a linear head on `finetune.per_group` labelled examples per
  combination of `finetune.group_by` (0: all), from the checkpoint or (`--random_init`) from scratch.
  Token labels (word-tagged probe data, `data.tag_key`) fine-tune a tagger: the head on every token.

  The fine-tuning is a run of its own (`sslax.methods.classify` / `tag` through the train loop),
  under `--finetune_dir` (default: `<workdir>/finetune/<init>-<hash of its config>`), so running
  the same command again resumes it; another setting gets another directory."""
  import hashlib
  import tempfile

  import jax
  import numpy as np

  from sslax.data.sources import Subset
  from sslax.eval.finetune import few_labels
  from sslax.methods import method_class
  from sslax.optim import count_trained
  from sslax.train.loop import eval_data, train

  config = _load(args)
  ft = config.finetune
  _check_adapters(config, ft.adapter_dim)
  method, mesh, state, train_src, eval_src = _restore(args, config)
  evals = eval_data(config, method, train_src, eval_src)
  if evals.probe_train is None:
    raise ValueError("eval.probe_data: expected labelled data to fine-tune on, got none (the pretraining data "
                     "has no labels)")
  train_src, eval_src = evals.probe_train, evals.probe_test
  first = train_src[0]
  if ft.label not in first:
    raise ValueError(f"finetune.label: expected one of the probe data's fields {sorted(first)}, got {ft.label!r}")
  tag_names = None
  per_token = np.ndim(first[ft.label]) == 1
  if per_token:  # one label per token: token classification
    if ft.per_group:
      raise ValueError(f"finetune.per_group: expected 0 (every sentence) for token labels {ft.label!r}, "
                       f"got {ft.per_group}")
    indices = np.arange(len(train_src))
    tag_names = getattr(train_src, "tag_names", None)
    num_classes = 1 + max(int(np.max(src[i][ft.label])) for src in (train_src, eval_src) for i in range(len(src)))
    if tag_names is not None:
      num_classes = max(num_classes, len(tag_names))
  else:
    keys = tuple(dict.fromkeys((ft.label, *ft.group_by)))
    labels = {k: np.array([int(train_src[i][k]) for i in range(len(train_src))]) for k in keys}
    indices = (few_labels(labels, ft.per_group, ft.group_by, seed=config.seed) if ft.per_group
               else np.arange(len(train_src)))
    num_classes = int(max(labels[ft.label].max(), max(int(eval_src[i][ft.label]) for i in range(len(eval_src)))) + 1)
  n, n_dev = len(indices), mesh.devices.size
  batch_size = max(n_dev, min(ft.batch_size, n) // n_dev * n_dev)
  # fewer labelled examples than a batch: each is repeated the same number of times
  labelled = Subset(train_src, np.tile(indices, -(-batch_size // n)))
  probe = method.probe_data() or config.data
  run_config = finetune_config(config, probe, backbone=method.name, task="tag" if per_token else "classify",
                               num_classes=num_classes, batch_size=batch_size, tag_names=tag_names)
  task = method_class(run_config.method.name)(run_config, pretrained=jax.device_get((state.params, state.batch_stats)))
  workdir = args.finetune_dir
  if not workdir:
    init = "random" if args.random_init else ("imported" if _init_name(args, config).startswith("init_from")
                                              else f"step{int(state.step)}")
    digest = hashlib.sha1(run_config.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:10]
    workdir = (os.path.join(args.workdir, "finetune", f"{init}-{digest}") if args.workdir
               else tempfile.mkdtemp(prefix="sslax-finetune-"))
  result = train(run_config, workdir, progress=not args.no_progress, method=task, sources=(labelled, eval_src))
  report = dict(result.report)
  report.update({"num_labelled": int(n), "step": int(state.step), "finetune_dir": workdir,
                 "init": _init_name(args, config),
                 "trained_params": count_trained(result.state.params, freeze=run_config.optim.freeze,
                                                 train_only=run_config.optim.train_only,
                                                 always=run_config.optim.always)})
  return _report(args, report)


def _generate(args) -> int:
  """Continues `--prompt` with a GPT checkpoint (key/value cache; greedy at temperature 0)."""
  import jax
  import numpy as np

  from sslax.data.tokenize import data_tokenizer
  from sslax.models.language import GPT, check_sampling, generate

  config = _load(args)
  if config.method.name != "gpt":
    raise ValueError(f"method.name: expected 'gpt' to generate text, got {config.method.name!r}")
  # every generation option, before the checkpoint is read
  check_sampling(temperature=args.temperature, top_k=args.top_k, vocab_size=int(config.model.vocab_size),
                 prefix="--")
  if args.num_samples < 1:
    raise ValueError(f"--num_samples: expected an integer >= 1, got {args.num_samples}")
  if args.num_tokens < 0:
    raise ValueError(f"--num_tokens: expected an integer >= 0, got {args.num_tokens}")
  tok = data_tokenizer(config.data)
  _, _, state, _, _ = _restore(args, config)
  model = jax.device_get(state).model()
  assert isinstance(model, GPT)
  prompt = tok.encode(args.prompt.replace("\\n", "\n"), add_special_tokens=False).ids
  if not prompt:
    raise ValueError(f"--prompt: expected text that tokenizes to at least one token, got {args.prompt!r}")
  num_tokens = min(args.num_tokens, model.max_len - len(prompt))
  ids = np.repeat(np.asarray(prompt, np.int32)[None], args.num_samples, axis=0)
  out = generate(model, jax.numpy.asarray(ids), num_tokens, jax.random.PRNGKey(args.seed),
                 temperature=args.temperature, top_k=args.top_k)
  samples = [tok.decode([int(t) for t in row]) for row in np.asarray(out)]
  for i, text in enumerate(samples):
    print(f"--- sample {i} (step {int(state.step)}, temperature {args.temperature}, top-k {args.top_k})\n{text}")
  if args.output:
    with open(args.output, "w") as f:
      json.dump({"step": int(state.step), "prompt": args.prompt, "temperature": args.temperature,
                 "top_k": args.top_k, "samples": samples}, f, indent=2)
  return 0


def _fewshot(args) -> int:
  """In-context accuracy of a GPT checkpoint on `eval.fewshot.data` (e.g. SST-2) for each --shots."""
  import jax

  from sslax.data.packing import raw_text_source
  from sslax.data.tokenize import data_tokenizer
  from sslax.eval.fewshot import few_shot_accuracy

  config = _load(args)
  if config.method.name != "gpt" or "fewshot" not in config.eval:
    raise ValueError(f"method.name / eval.fewshot: expected a GPT config with an eval.fewshot section, got "
                     f"method {config.method.name!r}, eval keys {sorted(config.eval)}")
  fs = config.eval.fewshot
  tok = data_tokenizer(config.data)
  _, _, state, _, _ = _restore(args, config)
  model = jax.device_get(state).model()

  def examples(split, limit):
    source = raw_text_source(fs.data, split)
    n = len(source) if not limit else min(limit, len(source))
    out = []
    for i in range(n):
      r = source[i]
      text = r["text"].decode("utf-8") if isinstance(r["text"], bytes) else str(r["text"])
      out.append((text, int(r["label"])))
    return out

  train, test = examples(fs.data.train_split, 0), examples(fs.data.eval_split, fs.max_test)
  report = {"step": int(state.step), "choices": list(fs.choices), "results": []}
  for shots in args.shots:
    r = few_shot_accuracy(model, tok, train, test, shots=shots, choices=tuple(fs.choices), template=fs.template,
                          seed=config.seed)
    report["results"].append(r)
    print(f"{shots}-shot: accuracy {r['accuracy']:.4f}, calibrated {r['calibrated_accuracy']:.4f} on "
          f"{r['num_examples']} ({r['truncated']} prompts cut to model.max_len)")
  report["majority_class"] = max(sum(y == c for _, y in test) for c in range(len(fs.choices))) / len(test)
  return _report(args, report)


def _bench(argv: list[str]) -> int:
  """`sslax bench ARGS`: sslax's step against the PyTorch references, side by side (`sslax.bench`)."""
  from sslax.bench import main as bench_main

  try:
    return bench_main(argv)
  except ValueError as e:  # a bad option or path, named before anything is compiled
    print(f"sslax bench: error: {e}", file=sys.stderr)
    return 2


def _plan(args) -> int:
  """Compiles the config's train step for each TPU topology (abstract devices, no data, nothing
  allocated) and prints per chip: memory against HBM, FLOPs, collectives, a roofline step time."""
  os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the compiler for the TPUs is enough; run nothing on them
  from sslax.train.plan import format_report, plan

  config = _load(args)
  reports = []
  for topology in args.topology:
    report = plan(config, topology, batch_size=args.batch_size, search_batch=args.max_batch)
    reports.append(report)
    print(format_report(report), flush=True)
  if args.output:
    with open(args.output, "w") as f:
      json.dump(reports, f, indent=2)
  return 0


def _quickstart(args) -> int:
  from sslax.quickstart import run_quickstart

  run_quickstart(args.workdir, seed=args.seed, arg=args.variant, progress=not args.no_progress)
  return 0


def _disk_full(error: BaseException, workdir: str | None) -> str | None:
  """The one-line message for an error that is the disk running out of space (errno 28, also as
  TensorStore's text inside Orbax's errors), naming the path and the last committed step."""
  import errno
  import re

  text = str(error)
  if getattr(error, "errno", None) != errno.ENOSPC and "No space left on device" not in text:
    return None
  from sslax.train.checkpoint import disk_full_message, verify_manifest

  match = re.search(r'local file "([^"]+)"', text)
  path = getattr(error, "filename", None) or (match.group(1) if match else workdir or "?")
  committed = None
  directory = os.path.join(workdir, "checkpoints") if workdir else None
  if directory and os.path.isdir(directory):
    steps = sorted((int(d) for d in os.listdir(directory) if d.isdigit()), reverse=True)
    committed = next((s for s in steps if verify_manifest(os.path.join(directory, str(s))) is None), None)
  return disk_full_message(path, committed, "No space left on device")


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  from sslax.platforms import use_cpu_unless_accelerated

  use_cpu_unless_accelerated()  # no libtpu errors on a machine without a TPU (see sslax/platforms.py)
  if argv[:1] == ["bench"]:  # the script parses its own options (argparse REMAINDER would drop them)
    return _bench(argv[1:])
  parser = argparse.ArgumentParser(prog="sslax", description="Self-supervised pretraining in JAX/Flax.")
  sub = parser.add_subparsers(dest="command", required=True)
  for name, help_ in [("train", "pretrain (resumes from the workdir's checkpoints)"),
                      ("eval", "kNN and linear probe of a workdir's latest checkpoint"),
                      ("finetune", "fine-tune the network and a linear head on (few) labels")]:
    p = sub.add_parser(name, help=help_)
    p.add_argument("--config", required=True, help="experiments/<method>_<data>.py[:variant]")
    p.add_argument("--workdir", required=name == "train")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--no_progress", action="store_true")
    if name == "train":
      p.add_argument("--stop_at", type=int, help="stop after this step with a committed checkpoint (resumable)")
    d = p.add_argument_group("multi-process (one process per host; see the README's 'Scaling out')")
    d.add_argument("--distributed", action="store_true",
                   help="join jax.distributed, finding the cluster from the environment (Cloud TPU, SLURM, MPI)")
    d.add_argument("--coordinator_address", help="host:port of process 0 (with --num_processes, --process_id)")
    d.add_argument("--num_processes", type=int)
    d.add_argument("--process_id", type=int)
  ex = sub.add_parser("export", help="write a checkpoint's encoder as PyTorch weights (torchvision / timm / "
                      "Hugging Face layouts)")
  ex.add_argument("--config", required=True)
  ex.add_argument("--workdir", required=True)
  ex.add_argument("--set", action="append", metavar="KEY=VALUE")
  ex.add_argument("--output", required=True, help="directory for model.safetensors + config.json")
  ex.add_argument("--step", type=int, help="a saved step (default: the latest)")
  ex.add_argument("--heads", action="store_true", help="also the pretraining heads the PyTorch class has "
                  "(BERT's MLM / NSP: BertForPreTraining; wav2vec 2.0's quantizer: Wav2Vec2ForPreTraining)")
  ex.add_argument("--path", help="which encoder, when the network has several (e.g. image_tower)")
  ex.add_argument("--overwrite", action="store_true", help="write into a non-empty --output")
  ex.set_defaults(random_init=False, no_progress=True)
  g = sub.add_parser("generate", help="continue a prompt with a GPT checkpoint")
  g.add_argument("--config", required=True)
  g.add_argument("--workdir")
  g.add_argument("--set", action="append", metavar="KEY=VALUE")
  g.add_argument("--prompt", required=True, help="text to continue ('\\n' for a newline)")
  g.add_argument("--num_tokens", type=int, default=100)
  g.add_argument("--num_samples", type=int, default=1)
  g.add_argument("--temperature", type=float, default=0.8)
  g.add_argument("--top_k", type=int, default=40)
  g.add_argument("--seed", type=int, default=0)
  fsp = sub.add_parser("fewshot", help="in-context few-shot accuracy of a GPT checkpoint")
  fsp.add_argument("--config", required=True)
  fsp.add_argument("--workdir")
  fsp.add_argument("--set", action="append", metavar="KEY=VALUE")
  fsp.add_argument("--shots", type=int, nargs="+", default=[0, 1, 4])
  for name in ("eval", "finetune", "generate", "fewshot"):
    sub.choices[name].add_argument("--random_init", action="store_true",
                                   help="start from the network at random init (seed from the config)")
    sub.choices[name].add_argument("--output", help="also write the report as JSON here")
  sub.choices["finetune"].add_argument("--finetune_dir", help="the fine-tuning run's workdir (checkpoints, "
                                       "metrics; resumed when it has them); default under --workdir")
  pl = sub.add_parser("plan", help="compile a recipe for TPU topologies and report what each chip needs")
  pl.add_argument("--config", required=True)
  pl.add_argument("--set", action="append", metavar="KEY=VALUE")
  pl.add_argument("--topology", action="append", required=True,
                  help="v5p:4x4x4, v5e:4x4, v4:2x2x4 or an accelerator type (v5p-128, v4-32, v5e-16); repeatable")
  pl.add_argument("--batch_size", type=int, help="global batch (default: train.batch_size)")
  pl.add_argument("--max_batch", action="store_true", help="also search the largest per-chip batch that fits")
  pl.add_argument("--output", help="also write the reports as JSON here")
  # listed for `sslax --help` only: main() hands `sslax bench ...` to _bench before parsing
  sub.add_parser("bench", help="sslax's train step against PyTorch on this machine (experiments/bench.py)")
  q = sub.add_parser("quickstart", help="SimCLR on bundled digits, then a linear-probe report")
  q.add_argument("--workdir", default="runs/quickstart")
  q.add_argument("--seed", type=int, default=0)
  q.add_argument("--variant", default=None, help="'smoke' for a few steps")
  q.add_argument("--no_progress", action="store_true")
  args = parser.parse_args(argv)
  output = getattr(args, "output", None)
  if output is not None and not os.path.isdir(os.path.dirname(os.path.abspath(output)) or "."):
    print(f"sslax {args.command}: error: --output: expected a path in an existing directory, got {output!r}",
          file=sys.stderr)
    return 2
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  for noisy in ("absl", "jax", "orbax", "tensorflow_datasets"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  try:
    from sslax.train.distributed import initialize, wants_distributed

    if wants_distributed(args):
      initialize(args.coordinator_address, args.num_processes, args.process_id)
    return {"train": _train, "eval": _eval, "finetune": _finetune, "export": _export, "generate": _generate,
            "fewshot": _fewshot,
            "plan": _plan, "quickstart": _quickstart}[args.command](args)
  except (ValueError, RuntimeError, OSError) as e:
    full = _disk_full(e, getattr(args, "workdir", None))
    if full:  # Orbax's own error from a save that ran out of space midway: one line, not its tracebacks
      print(f"sslax {args.command}: error: {full}", file=sys.stderr)
      return 2
    if isinstance(e, ValueError):
      print(f"sslax {args.command}: error: {e}", file=sys.stderr)
      return 2
    if isinstance(e, OSError):
      raise
    from sslax.train.checkpoint import CheckpointCorruptError, DiskFullError
    from sslax.train.loop import NonFiniteError
    from sslax.train.preemption import Preempted

    if isinstance(e, DiskFullError):
      print(f"sslax {args.command}: error: {e}", file=sys.stderr)
      return 2
    if isinstance(e, Preempted):
      print(f"sslax {args.command}: preempted: {e}", file=sys.stderr)
      return 143  # as a process killed by SIGTERM: schedulers requeue it
    if isinstance(e, CheckpointCorruptError):
      print(f"sslax {args.command}: error: {e}", file=sys.stderr)
      return 4
    if not isinstance(e, NonFiniteError):
      raise
    print(f"sslax {args.command}: error: {e}", file=sys.stderr)
    return 3


if __name__ == "__main__":
  sys.exit(main())
