"""Downstream fine-tuning through the train loop: pretrained weights in, the backbone in evaluation
or (finetune.train_mode) training mode."""
import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from helpers import ROOT
from sslax.cli import main
from sslax.config import load_config
from sslax.data import get_source, train_dataset
from sslax.methods import make_method
from sslax.train.loop import make_checkpointer
from sslax.train.state import build_optimizer, create_train_state

CONFIG = os.path.join(ROOT, "experiments", "simclr_digits.py:smoke")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("digits")
  assert main(["train", "--config", CONFIG, "--workdir", str(workdir), "--no_progress"]) == 0
  return workdir


def _restored(config, directory):
  """The latest checkpoint of `directory`, on the host."""
  method = make_method(config)
  state = create_train_state(method, build_optimizer(method, config, config.train.num_steps), config.seed)
  iterator = iter(train_dataset(get_source(config.data, "train"), global_batch_size=config.train.batch_size, seed=0,
                                transform=method.inputs.transform()))
  ckpt = make_checkpointer(config, str(directory))
  state, _ = ckpt.restore(state, iterator)
  ckpt.close()
  return jax.device_get(state)


@pytest.mark.parametrize("train_mode", [False, True])
def test_finetune_a_pretrained_encoder_in_eval_or_train_mode(tmp_path, pretrained, train_mode):
  out = tmp_path / "report.json"
  assert main(["finetune", "--config", CONFIG, "--workdir", str(pretrained), "--output", str(out), "--no_progress",
               "--set", "finetune.steps=20", "--set", "finetune.lr=0.01", "--set", "finetune.warmup_steps=2",
               "--set", f"finetune.train_mode={train_mode}"]) == 0
  report = json.loads(out.read_text())
  # 1,257 labelled digits, 20 steps of batch 64 from a 6-step SimCLR encoder: far above chance (0.1)
  assert report["top1"] > 0.5 and report["num_labelled"] == 1257, report
  run_config = ml_collections.ConfigDict(json.load(open(os.path.join(report["finetune_dir"], "config.json"))))
  assert run_config.method.name == "classify" and run_config.method.backbone == "simclr"
  assert run_config.finetune.train_mode is train_mode
  # the batch statistics move only when the backbone trains in training mode
  pre, tuned = _restored(load_config(CONFIG), pretrained), _restored(run_config, report["finetune_dir"])
  moved = [float(np.abs(np.asarray(a) - np.asarray(b)).max())
           for a, b in zip(jax.tree.leaves(pre.batch_stats), jax.tree.leaves(tuned.batch_stats["backbone"]), strict=True)]
  assert (max(moved) > 0) is train_mode, moved


def test_export_then_eval_and_finetune_from_the_exported_weights(tmp_path, pretrained, capsys):
  """`sslax export` writes the encoder in torchvision's layout; `model.init_from` of that file gives
  `sslax eval` the same probe as the checkpoint itself, and `sslax finetune` starts from it."""
  out = tmp_path / "exported"
  assert main(["export", "--config", CONFIG, "--workdir", str(pretrained), "--output", str(out)]) == 0
  exported = json.loads(capsys.readouterr().out)
  assert exported["layout"] == "torchvision" and exported["encoder_path"] == "encoder", exported
  assert sorted(os.listdir(out)) == ["config.json", "model.safetensors", "sslax.json"]
  assert main(["export", "--config", CONFIG, "--workdir", str(pretrained), "--output", str(out)]) == 2
  assert "--output: expected a new or empty directory" in capsys.readouterr().err
  assert main(["eval", "--config", CONFIG, "--workdir", str(pretrained), "--output", str(tmp_path / "ckpt.json"),
               "--no_progress"]) == 0
  imported = ["--set", f"model.init_from='{out / 'model.safetensors'}'"]
  assert main(["eval", "--config", CONFIG, "--output", str(tmp_path / "imported.json"), "--no_progress",
               *imported]) == 0
  ckpt, imp = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("ckpt", "imported"))
  assert imp["init"].startswith("init_from:") and ckpt["init"] == "checkpoint"
  for key in ("knn_top1", "linear_top1"):
    assert imp[key] == ckpt[key], (key, imp[key], ckpt[key])
  assert main(["eval", "--config", CONFIG, "--random_init", "--no_progress", *imported]) == 2
  assert "--random_init: expected no model.init_from" in capsys.readouterr().err
  assert main(["finetune", "--config", CONFIG, "--output", str(tmp_path / "ft.json"), "--no_progress", *imported,
               "--finetune_dir", str(tmp_path / "ft"), "--set", "finetune.steps=4", "--set", "finetune.warmup_steps=1"]) == 0
  assert json.loads((tmp_path / "ft.json").read_text())["init"].startswith("init_from:")
