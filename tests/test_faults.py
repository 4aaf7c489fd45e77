"""Faults and bad input, round two (issue 36), each with real files and real processes: a changed
local dataset, a lost first manifest, two runs on one workdir, OS errors on the paths a user gives,
another method's config on a checkpoint, damaged prepared data, TFDS without network, regex
patterns without the groups they need, and the smaller cases (a mistyped eval workdir, a full
disk, a batch the devices do not divide)."""
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import ROOT, digits_smoke_config, png_bytes, write_wav_folder
from sslax.cli import main as cli
from sslax.data import image_folder_sources
from sslax.data.audio import audio_folder_sources
from sslax.data.builders import PREPARED_FILE, tfds_source
from sslax.train.checkpoint import MANIFEST_FILE, Checkpointer, DiskFullError
from sslax.train.loop import train
from sslax.train.workdir import WorkdirLock

SMOKE = os.path.join(ROOT, "experiments", "simclr_digits.py:smoke")


def _images(root, per_class=3, classes=("cat", "dog")):
  for c, cls in enumerate(classes):
    os.makedirs(root / cls, exist_ok=True)
    for i in range(per_class):
      (root / cls / f"{i}.png").write_bytes(png_bytes(np.full((8, 8, 3), 30 * i + c, np.uint8)))
  return str(root)


def _sslax(*args, timeout=300, **kw):
  return subprocess.run([sys.executable, "-m", "sslax.cli", *args], capture_output=True, text=True, cwd=ROOT,
                        timeout=timeout, **kw)


# 1. a local dataset's cache sees changes inside it

def test_a_changed_folder_is_prepared_again_and_says_so(tmp_path, caplog):
  folder, cache = _images(tmp_path / "imgs"), str(tmp_path / "tfds")
  assert len(image_folder_sources({"train": folder}, cache)["train"]) == 6
  top = os.stat(folder).st_mtime_ns
  for i in range(3, 6):  # added inside a class folder: the top folder's mtime does not move
    (tmp_path / "imgs" / "cat" / f"{i}.png").write_bytes(png_bytes(np.zeros((8, 8, 3), np.uint8)))
  assert os.stat(folder).st_mtime_ns == top
  with caplog.at_level(logging.WARNING, logger="sslax"):
    assert len(image_folder_sources({"train": folder}, cache)["train"]) == 9
  assert any("changed since they were prepared" in r.getMessage() for r in caplog.records)
  # one file replaced in place by a corrupt one of another size is seen too, and named
  (tmp_path / "imgs" / "dog" / "0.png").write_bytes(b"not a png any more")
  with pytest.raises(ValueError, match=r"imgs/dog/0.png: cannot decode"):
    image_folder_sources({"train": folder}, cache)
  # a labels CSV is part of an audio folder's key
  wavs = write_wav_folder(tmp_path / "wavs", digits=(0, 1), speakers=("ann",), per_pair=2)
  csv = tmp_path / "labels.csv"
  names = sorted(os.listdir(wavs))
  csv.write_text("file,label\n" + "".join(f"{n},a\n" for n in names))
  first = audio_folder_sources({"train": wavs}, cache, labels_csv=str(csv))["train"]
  assert first.num_classes["label"] == 1
  time.sleep(0.01)
  csv.write_text("file,label\n" + "".join(f"{n},{'ab'[i % 2]}\n" for i, n in enumerate(names)))
  assert audio_folder_sources({"train": wavs}, cache, labels_csv=str(csv))["train"].num_classes["label"] == 2


# 2. kill -9 during the very first save

def test_a_first_step_without_its_manifest_restarts_from_step_0(tmp_path):
  """The issue's reproduction without timing: step 1 committed, its manifest removed. The restart
  sets it aside and trains from step 0 (it used to exit 4 until a second restart)."""
  config = digits_smoke_config(**{"train.checkpoint_every": 1})
  assert train(config, str(tmp_path), stop_at=1, progress=False) is None
  os.remove(tmp_path / "checkpoints" / "1" / MANIFEST_FILE)
  with pytest.warns(RuntimeWarning, match="starting from step 0"):
    assert train(config, str(tmp_path), stop_at=2, progress=False) is None
  assert os.path.isdir(tmp_path / "checkpoints_corrupt" / "1")
  assert sorted(d for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()) == ["1", "2"]
  assert all(os.path.exists(tmp_path / "checkpoints" / s / MANIFEST_FILE) for s in ("1", "2"))


# 3. two runs on one workdir

def test_a_second_train_on_a_busy_workdir_is_refused_naming_the_first(tmp_path):
  workdir = str(tmp_path / "w")
  first = subprocess.Popen([sys.executable, "-m", "sslax.cli", "train", "--config", SMOKE, "--workdir", workdir,
                            "--no_progress", "--stop_at", "2"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
  lock = WorkdirLock(workdir)
  deadline = time.time() + 120
  while lock.holder().get("pid") != first.pid:
    assert first.poll() is None and time.time() < deadline, first.communicate()
    time.sleep(0.2)
  second = _sslax("train", "--config", SMOKE, "--workdir", workdir, "--no_progress")
  assert second.returncode == 2, second.stderr[-2000:]
  assert (f"is in use by another sslax run (pid {first.pid} on host {socket.gethostname()}"
          in second.stderr), second.stderr[-2000:]
  out, err = first.communicate(timeout=300)
  assert first.returncode == 0, err[-3000:]
  assert sorted(d for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()) == ["1", "2"]


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, caplog):
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from sslax.train.workdir import WorkdirLock; "
                             "WorkdirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)",
                             str(tmp_path)], stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "held"
  with pytest.raises(ValueError, match=rf"in use by another sslax run \(pid {holder.pid} "):
    WorkdirLock(str(tmp_path)).acquire()
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  assert WorkdirLock(str(tmp_path)).holder()["pid"] == holder.pid  # the stale file is still there
  with caplog.at_level(logging.INFO, logger="sslax"), WorkdirLock(str(tmp_path)) as lock:
    assert lock.holder()["pid"] == os.getpid()
  assert any(f"taking over the lock of pid {holder.pid}" in r.getMessage() and "no longer running" in r.getMessage()
             for r in caplog.records)


# 6. OS errors on the paths a user gives

def test_bad_paths_are_one_line_naming_the_flag_and_change_nothing(tmp_path, capsys):
  a_file = tmp_path / "a_file"
  a_file.write_text("mine")
  bad_config = tmp_path / "bad_config.py"
  bad_config.write_text("def get_config(arg)\n  return None\n")
  cases = [
      (["train", "--config", SMOKE, "--workdir", str(a_file)], f"--workdir: expected a directory, got the file "
                                                               f"'{a_file}'"),
      (["train", "--config", SMOKE, "--workdir", ""], "--workdir: expected a directory path, got ''"),
      (["train", "--config", str(tmp_path), "--workdir", str(tmp_path / "w")],
       f"--config: expected a Python config file (path/to/config.py[:variant]), got '{tmp_path}' (a directory)"),
      (["train", "--config", str(bad_config), "--workdir", str(tmp_path / "w")],
       f"--config: {bad_config}, line 1: expected ':'"),
      (["eval", "--config", SMOKE, "--random_init", "--output", str(tmp_path / "no" / "r.json")],
       "--output: expected a path in an existing directory"),
  ]
  for argv, message in cases:
    assert cli(argv) == 2, argv
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
  assert a_file.read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["a_file", "bad_config.py"]
  # a labels CSV that is not there
  wavs = write_wav_folder(tmp_path / "wavs", digits=(0,), speakers=("ann",), per_pair=2)
  with pytest.raises(ValueError, match="data.labels_csv: expected an existing CSV file"):
    audio_folder_sources({"train": wavs}, str(tmp_path / "tfds"), labels_csv=str(tmp_path / "missing.csv"))


def _unprivileged():
  """preexec_fn that, under root, drops the capabilities that let root write where the permissions
  say no (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, from the bounding set: prctl PR_CAPBSET_DROP),
  so that a read-only folder is read-only for the child too."""
  if os.getuid() != 0:
    return None
  import ctypes

  libc = ctypes.CDLL(None, use_errno=True)

  def drop():
    for cap in (1, 2):
      if libc.prctl(24, cap, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

  return drop


def test_read_only_workdir_and_data_dir_are_named(tmp_path):
  readonly = tmp_path / "readonly"
  readonly.mkdir()
  images = _images(tmp_path / "imgs")
  config = tmp_path / "images.py"
  config.write_text(
      "from sslax.quickstart import digits_config\n"
      "def get_config(arg=None):\n"
      "  c = digits_config('smoke')\n"
      "  c.data.source = 'image_folder'\n"
      f"  c.data.paths = {{'train': {images!r}, 'test': {images!r}}}\n"
      f"  c.data.data_dir = {str(readonly / 'tfds')!r}\n"
      "  return c\n")
  os.chmod(readonly, 0o555)
  locked = tmp_path / "locked"
  shutil.copytree(images, locked)
  os.chmod(locked, 0o000)
  writable = tmp_path / "w"
  env = {**os.environ, "HOME": str(tmp_path)}
  for workdir, extra, message in (
      (readonly, [], f"--workdir: cannot write to '{readonly}' (Permission denied)"),
      (writable, [], f"data.data_dir: cannot write the prepared data to '{readonly}/tfds"),
      (writable, ["--set", f"data.paths.train={locked}"], f"data.paths.train: cannot read '{locked}' (permission "
                                                          "denied)")):
    run = _sslax("train", "--config", f"{config}", "--workdir", str(workdir), "--no_progress", *extra,
                 preexec_fn=_unprivileged(), env=env)
    assert run.returncode == 2 and message in run.stderr, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1].startswith("sslax train: error: ")
  os.chmod(locked, 0o755)
  assert os.listdir(readonly) == [] and sorted(os.listdir(locked)) == ["cat", "dog"]


# 7. another method's or model's config on a checkpoint

def test_another_model_config_is_named_on_resume_and_eval(tmp_path, capsys):
  config = digits_smoke_config(**{"train.checkpoint_every": 1})
  assert train(config, str(tmp_path), stop_at=1, progress=False) is None
  other = digits_smoke_config(**{"train.checkpoint_every": 1, "projector.out_dim": 32})
  with pytest.raises(ValueError, match=r"projector.out_dim: checkpoint has 16, this run has 32"):
    train(other, str(tmp_path), progress=False)
  allowed = digits_smoke_config(**{"train.checkpoint_every": 1, "projector.out_dim": 32,
                                   "train.allow_resume_changes": True})
  with pytest.raises(ValueError, match=r"holds another state than this config builds \(\d+ difference\(s\), e.g. "
                                       r"params/projector/linears/1/bias/value: checkpoint has \(16,\) float32, this "
                                       r"run has \(32,\) float32"):
    train(allowed, str(tmp_path), progress=False)
  saved = json.loads((tmp_path / "checkpoints" / "run_fingerprint.json").read_text())
  assert saved["projector.out_dim"] == 16  # the refused run did not rewrite it
  byol = tmp_path / "byol_digits.py"
  byol.write_text(f"import sys\nsys.path.insert(0, {os.path.join(ROOT, 'tests')!r})\n"
                  "from helpers import method_digits_config\n"
                  "def get_config(arg=None):\n  return method_digits_config('byol')\n")
  assert cli(["eval", "--config", str(byol), "--workdir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "method.name: checkpoint has 'simclr', this run has 'byol'" in err and len(err.splitlines()) == 1, err


# 9. damaged prepared data; interrupted preparations

def test_truncated_prepared_data_is_named_and_prepared_again(tmp_path, caplog):
  folder, cache = _images(tmp_path / "imgs"), str(tmp_path / "tfds")
  source = image_folder_sources({"train": folder}, cache)["train"]
  expected = [int(source[i]["label"]) for i in range(len(source))]
  records = [os.path.join(d, f) for d, _, fs in os.walk(cache) for f in fs if ".array_record" in f]
  assert len(records) == 1
  with open(records[0], "r+b") as f:
    f.truncate(os.path.getsize(records[0]) // 2)
  config_dir = os.path.dirname(os.path.dirname(records[0]))
  os.makedirs(os.path.join(config_dir, "incomplete.ABCDEF_1.0.0"))  # what a SIGTERM mid-preparation leaves
  with caplog.at_level(logging.INFO, logger="sslax"):
    again = image_folder_sources({"train": folder}, cache)["train"]
  assert [int(again[i]["label"]) for i in range(len(again))] == expected
  messages = [r.getMessage() for r in caplog.records]
  assert any("is damaged" in m and records[0] in m and "preparing it again" in m for m in messages), messages
  assert any("left by an interrupted preparation" in m for m in messages)
  assert not [n for n in os.listdir(config_dir) if n.startswith("incomplete.")]
  assert os.path.exists(os.path.join(os.path.dirname(records[0]), PREPARED_FILE))


# 10. TFDS by name on a machine that cannot prepare it

def test_tfds_by_name_without_the_network_fails_at_once_naming_what_is_missing(tmp_path, monkeypatch):
  def no_network(*args, **kwargs):
    raise OSError(101, "Network is unreachable")

  monkeypatch.setattr(socket, "create_connection", no_network)
  start = time.perf_counter()
  with pytest.raises(ValueError, match=r"data.name: preparing the TFDS dataset 'mnist' under .* needs .*the network "
                                       r"\(cannot reach .*Network is unreachable\).*data.paths at local files"):
    tfds_source("mnist", "train", str(tmp_path))
  assert time.perf_counter() - start < 30
  with pytest.raises(ValueError, match="data.name: expected a TFDS dataset name .*got 'no_such_dataset'"):
    tfds_source("no_such_dataset", "train", str(tmp_path))


# 11. a filename pattern without the groups a label or a split filter needs

def test_a_pattern_without_the_needed_groups_is_named(tmp_path):
  wavs = write_wav_folder(tmp_path / "wavs", digits=(0, 1), speakers=("ann",), per_pair=2)
  cache = str(tmp_path / "tfds")
  with pytest.raises(ValueError, match=r"data.filename_pattern: expected a named group \(\?P<label>...\), got "
                                       r"'\(\?P<digit>.*' with groups \['digit'\]"):
    audio_folder_sources({"train": wavs}, cache, pattern=r"(?P<digit>\d+)_.*\.wav")
  with pytest.raises(ValueError, match=r"data.split_filter.train: 'index>=1' filters on 'index', expected a named "
                                       r"group .* \(it has \['label'\]\)"):
    audio_folder_sources({"train": wavs}, cache, pattern=r"(?P<label>\d+)_.*\.wav", split_filters={"train": "index>=1"})
  with pytest.raises(ValueError, match=r"data.filename_pattern: expected a regular expression, got '\(\?P<label>'"):
    audio_folder_sources({"train": wavs}, cache, pattern=r"(?P<label>")


# smaller cases

def test_eval_on_a_mistyped_workdir_creates_nothing(tmp_path, capsys):
  missing = tmp_path / "runs" / "typo"
  assert cli(["eval", "--config", SMOKE, "--workdir", str(missing)]) == 2
  assert f"--workdir: expected checkpoints under {missing}/checkpoints, found none" in capsys.readouterr().err
  assert not (tmp_path / "runs").exists()


def test_a_full_disk_is_one_line_keeping_the_committed_step(tmp_path, monkeypatch, capsys):
  from checkpoint_kill_runner import data_iterator, state_at
  from sslax.cli import _disk_full

  ckpt = Checkpointer(str(tmp_path), save_every=1, async_save=False)
  it = data_iterator()
  ckpt.save(state_at(1), it, force=True)
  real = shutil.disk_usage
  monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))  # 16 MiB state, 1 MiB free
  with pytest.raises(DiskFullError, match=rf"the disk holding {tmp_path}/checkpoints is full \(1.0 MiB free, a "
                                          r"checkpoint of step 2 needs about .* MiB\); the last committed step, 1, "
                                          "is intact"):
    ckpt.save(state_at(2), it, force=True)
  ckpt.close()
  assert not [d for d in os.listdir(tmp_path / "checkpoints") if "tmp" in d]
  # the error Orbax raises when the disk fills midway (TensorStore's text) becomes the same one line
  orbax_error = ValueError(f'RESOURCE_EXHAUSTED: Error writing local file "{tmp_path}/checkpoints/2.orbax-'
                           'checkpoint-tmp/state/_sharding": Failed to write 41117 bytes to file 9: No space left on '
                           "device [os_error_code='28']")
  assert _disk_full(orbax_error, str(tmp_path)) == (
      f"the disk holding {tmp_path}/checkpoints/2.orbax-checkpoint-tmp/state/_sharding is full (No space left on "
      "device); the last committed step, 1, is intact: free space there and run the same command again")
  assert _disk_full(ValueError("another error"), str(tmp_path)) is None


def test_a_batch_the_devices_do_not_divide_names_train_batch_size(tmp_path):
  with pytest.raises(ValueError, match=r"train.batch_size: expected a multiple of the 8 devices .*got 60 \(e.g. 56\)"):
    train(digits_smoke_config(**{"train.batch_size": 60}), str(tmp_path), progress=False)
