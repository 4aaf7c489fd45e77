"""Workdirs on object stores (`gs://`): sslax's own files go through `etils.epath`.

CI has no bucket, so the test marks a local folder as remote (`sslax.paths.is_remote`): every
branch an object store takes (no lock, no free-space check, manifests of sizes only, metrics
rewritten whole) then runs through the same epath calls a `gs://` workdir makes, on local disk.
What it cannot show is the bucket itself: Orbax and TensorStore write the arrays there.
"""
import json
import os

import pytest

import sslax.paths
import sslax.train.checkpoint
import sslax.train.metrics
import sslax.train.workdir
from helpers import method_digits_config
from sslax.paths import is_remote, join
from sslax.train.checkpoint import MANIFEST_FILE, Checkpointer, hashes_for, verify_manifest
from sslax.train.loop import train
from sslax.train.metrics import read_metrics


def test_remote_prefixes_and_hash_policy():
  assert is_remote("gs://bucket/run") and is_remote("s3://b/r") and not is_remote("/tmp/run")
  assert not is_remote("runs/gs://x")
  assert join("gs://bucket/run", "checkpoints", "3") == "gs://bucket/run/checkpoints/3"
  assert hashes_for("/tmp/run/checkpoints") and not hashes_for("gs://bucket/run/checkpoints")
  assert hashes_for("gs://bucket/run/checkpoints", "sha256") and not hashes_for("/tmp/run", "size")
  with pytest.raises(ValueError, match=r"train.checkpoint_hashes: expected one of \['auto', 'sha256', 'size'\], "
                                       r"got 'md5'"):
    hashes_for("/tmp/run", "md5")


def test_a_run_on_an_object_store_path_trains_resumes_and_verifies(tmp_path, monkeypatch):
  root = str(tmp_path)
  remote = lambda path: os.fspath(path).startswith(root)  # noqa: E731 - this folder plays the bucket
  for module in (sslax.paths, sslax.train.checkpoint, sslax.train.metrics, sslax.train.workdir):
    monkeypatch.setattr(module, "is_remote", remote)
  workdir = tmp_path / "run"
  config = method_digits_config("simclr", **{"train.num_steps": 4, "train.log_every": 1,
                                             "train.checkpoint_every": 2, "eval.linear_probe": False})
  assert train(config, str(workdir), progress=False, stop_at=2) is None
  assert not (workdir / "sslax.lock").exists()  # no locks on object stores
  manifest = json.loads((workdir / "checkpoints" / "2" / MANIFEST_FILE).read_text())["files"]
  assert manifest and all(set(entry) == {"size"} for entry in manifest.values())  # a listing, nothing read back
  assert [r["step"] for r in read_metrics(str(workdir)) if "loss" in r] == [1, 2]

  result = train(config, str(workdir), progress=False)  # resumes from step 2 through the same calls
  assert int(result.state.step) == 4
  assert [r["step"] for r in read_metrics(str(workdir)) if "loss" in r] == [1, 2, 3, 4]  # earlier lines kept
  assert json.loads((workdir / "report.json").read_text())["steps"] == 4
  assert (workdir / "config.json").exists() and (workdir / "checkpoints" / "run_fingerprint.json").exists()

  # sizes alone still catch a truncated file
  step_dir = workdir / "checkpoints" / "4"
  assert verify_manifest(step_dir) is None
  name, entry = max(json.loads((step_dir / MANIFEST_FILE).read_text())["files"].items(), key=lambda e: e[1]["size"])
  with open(step_dir / name, "r+b") as f:
    f.truncate(entry["size"] // 2)
  assert "truncated or overwritten" in verify_manifest(step_dir)
  assert Checkpointer(str(workdir), save_every=2).hashes is False
