"""End to end: pretrain a few steps, checkpoint, stop, resume exactly, probe; and the CLI."""
import json
import os

import jax
import numpy as np

from helpers import ROOT, bad_image_files, digits_smoke_config, write_image_tar
from sslax.train.checkpoint import MANIFEST_FILE
from sslax.train.loop import train
from sslax.train.metrics import read_metrics


def _losses(workdir):
  return {r["step"]: r["loss"] for r in read_metrics(workdir) if "loss" in r}


def test_pretrain_checkpoint_resume_probe(tmp_path):
  config = digits_smoke_config(**{"train.log_every": 1, "train.checkpoint_every": 3})
  straight = train(config, str(tmp_path / "straight"), progress=False)
  assert straight.report["steps"] == 6
  # far above chance (0.1): a probe of collapsed or misaligned features sits near 0.1
  assert straight.report["linear_top1"] > 0.5 and straight.report["knn_top1"] > 0.5, straight.report

  resumed_dir = str(tmp_path / "resumed")
  assert train(config, resumed_dir, stop_at=3, progress=False) is None
  steps = sorted(int(n) for n in os.listdir(os.path.join(resumed_dir, "checkpoints")) if n.isdigit())
  assert steps[-1] == 3
  resumed = train(config, resumed_dir, progress=False)

  # per-step losses and every leaf of the final state are identical
  assert _losses(resumed_dir) == _losses(str(tmp_path / "straight"))
  for a, b in zip(jax.tree.leaves(jax.device_get(straight.state)), jax.tree.leaves(jax.device_get(resumed.state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert resumed.report == straight.report
  for name in ("config.json", "metrics.jsonl", "report.json", "tensorboard"):
    assert os.path.exists(os.path.join(resumed_dir, name))


def test_cli_train_on_an_image_folder_tar_then_eval(tmp_path, capsys):
  from sslax.cli import main

  # three bad files in the train tar, left out and counted under data.on_bad_example='skip'
  train_tar = write_image_tar(str(tmp_path / "train.tar.gz"), num_per_class=24, seed=0,
                              extra_files=bad_image_files())
  test_tar = write_image_tar(str(tmp_path / "test.tar.gz"), num_per_class=8, seed=1)
  args = ["--config", os.path.join(ROOT, "experiments", "simclr_cifar10.py:smoke"),
          "--workdir", str(tmp_path / "run"), "--no_progress",
          "--set", f"data.paths.train='{train_tar}'", "--set", f"data.paths.test='{test_tar}'",
          "--set", f"data.data_dir='{tmp_path / 'tfds'}'", "--set", "augment.crop_size=(16, 16)",
          # width 16: the CLI and the image data are under test, not the model (the recipe's width 64
          # takes the im2col convolutions at this size, 28 of the test's 80 s to compile on 2 cores)
          "--set", "model.width=16"]
  assert main(["train", *args, "--set", "data.on_bad_example='skip'"]) == 0
  report = json.loads((tmp_path / "run" / "report.json").read_text())
  # the three classes differ in mean colour: any working encoder separates them (chance: 1/3)
  assert report["steps"] == 4 and report["knn_top1"] > 0.8 and report["data/skipped_examples"] == 3, report
  assert read_metrics(str(tmp_path / "run"))[0]["data/skipped_examples"] == 3
  args += ["--set", "data.on_bad_example='skip'"]
  capsys.readouterr()
  assert main(["eval", *args]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["step"] == 4 and out["init"] == "checkpoint"
  assert out["knn_top1"] == report["knn_top1"] and out["linear_top1"] > 0.8  # the run's own checkpoint
  assert main(["eval", "--random_init", "--output", str(tmp_path / "random.json"), *args]) == 0
  baseline = json.loads((tmp_path / "random.json").read_text())
  assert baseline["step"] == 0 and baseline["init"] == "random" and baseline["linear_top1"] > 0.8

  # a corrupted checkpoint under on_corrupt_checkpoint='fail': a named error and exit code 4, nothing moved
  step_dir = tmp_path / "run" / "checkpoints" / "4"
  victim = max((p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST_FILE),
               key=lambda p: p.stat().st_size)
  victim.write_bytes(victim.read_bytes()[:-1])
  capsys.readouterr()
  assert main(["eval", *args, "--set", "train.on_corrupt_checkpoint='fail'"]) == 4
  err = capsys.readouterr().err
  assert "checkpoint step 4 is invalid" in err and str(victim) in err and step_dir.exists()


def test_cli_reports_bad_override(tmp_path, capsys):
  from sslax.cli import main

  rc = main(["train", "--config", os.path.join(ROOT, "experiments", "simclr_digits.py:smoke"),
             "--workdir", str(tmp_path / "x"), "--set", "train.batch_size=0"])
  assert rc == 2
  assert "train.batch_size: expected a positive integer, got 0" in capsys.readouterr().err
