"""tpu/ launchers, offline: every command of a dry run, and the CLI's multi-process flags."""
import os
import shlex
import subprocess
import sys


from sslax.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POD = os.path.join(ROOT, "tpu", "pod.py")
SBATCH = os.path.join(ROOT, "tpu", "slurm_train.sbatch")


def _pod(*args):
  out = subprocess.run([sys.executable, POD, "--name", "ssl-pod", "--zone", "us-east5-a", "--project", "p1",
                        "--dry-run", *args], capture_output=True, text=True, cwd=ROOT)
  return out.returncode, [shlex.split(line) for line in out.stdout.splitlines()], out.stderr


def test_pod_dry_run_prints_every_gcloud_command_and_runs_none():
  code, (create,), _ = _pod("create", "--accelerator", "v5p-32", "--spot")
  assert code == 0
  assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "ssl-pod"]
  assert {"--accelerator-type=v5p-32", "--version=v2-alpha-tpuv5", "--spot", "--zone=us-east5-a",
          "--project=p1"} <= set(create)

  code, (scp, pip), _ = _pod("install", "--source", ".", "--extras", "text")
  assert code == 0 and scp[4] == "scp" and "--worker=all" in scp and "ssl-pod:~/sslax" in scp
  assert pip[4:6] == ["ssh", "ssl-pod"] and "--worker=all" in pip
  assert "jax[tpu]" in pip[-3] + pip[-2] + pip[-1] and 'pip install -e "$HOME/sslax[text]"' in " ".join(pip)

  code, (train,), _ = _pod("train", "--config", "experiments/dino_cifar10.py:full", "--workdir", "/mnt/runs/d",
                           "--set", "train.batch_size=4096", "--source_dir")
  command = next(a for a in train if a.startswith("--command="))[len("--command="):]
  assert code == 0 and "--worker=all" in train
  assert command.startswith("cd ~/sslax && nohup sslax train --config experiments/dino_cifar10.py:full")
  assert "--distributed" in command and "--set train.batch_size=4096" in command and "sslax_train.log" in command

  code, (logs,), _ = _pod("logs", "--worker", "3", "--follow")
  assert code == 0 and "--worker=3" in logs and "tail -n 200 -f ~/sslax_train.log" in " ".join(logs)
  code, (stop,), _ = _pod("stop")
  assert code == 0 and "--command=pkill -TERM -f 'sslax train' || true" in stop and "--worker=all" in stop
  code, (delete,), _ = _pod("delete")
  assert code == 0 and delete[4:6] == ["delete", "ssl-pod"] and "--quiet" in delete


def test_pod_names_a_bad_accelerator():
  code, _, err = _pod("create", "--accelerator", "h100-8")
  assert code != 0 and "--accelerator: expected one of the generations" in err and "'h100-8'" in err


def test_slurm_script_dry_run_and_missing_settings():
  env = {**os.environ, "SSLAX_DRY_RUN": "1", "CONFIG": "experiments/byol_cifar10.py:full", "WORKDIR": "/shared/b",
         "SLURM_JOB_NUM_NODES": "4", "SLURM_NTASKS": "32", "SLURM_GPUS_PER_NODE": "8"}
  out = subprocess.run(["bash", SBATCH, "--set", "train.batch_size=4096"], env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  srun = shlex.split(out.stdout.splitlines()[0])
  assert srun[:3] == ["srun", "--kill-on-bad-exit=1", "sslax"]
  assert srun[3:] == ["train", "--config", "experiments/byol_cifar10.py:full", "--workdir", "/shared/b",
                      "--no_progress", "--distributed", "--set", "train.batch_size=4096"]
  assert "nodes=4 tasks=32" in out.stdout
  with open(SBATCH) as f:
    directives = [line for line in f if line.startswith("#SBATCH")]
  assert "#SBATCH --ntasks-per-node=8\n" in directives and "#SBATCH --signal=TERM@120\n" in directives
  env.pop("WORKDIR")
  out = subprocess.run(["bash", SBATCH], env=env, capture_output=True, text=True)
  assert out.returncode != 0 and "WORKDIR" in out.stderr


def test_cli_multiprocess_flags_come_all_three_or_none(capsys):
  code = main(["train", "--config", "experiments/simclr_digits.py:smoke", "--workdir", "/tmp/unused",
               "--coordinator_address", "localhost:1234", "--num_processes", "2"])
  assert code == 2
  err = capsys.readouterr().err
  assert "--coordinator_address / --num_processes / --process_id: expected all three or none" in err
  assert "'localhost:1234' / 2 / None" in err
  code = main(["train", "--config", "experiments/simclr_digits.py:smoke", "--workdir", "/tmp/unused",
               "--coordinator_address", "localhost:1234", "--num_processes", "2", "--process_id", "2"])
  assert code == 2 and "--process_id: expected 0 <= process_id < num_processes (2), got 2" in capsys.readouterr().err


def test_importing_sslax_leaves_jax_backends_uninitialized():
  # jax.distributed.initialize() refuses to run once a backend exists, and multi-host scripts
  # import sslax before they call it: no module may make an array at import time
  code = ("import importlib, pkgutil, sslax\n"
          "from jax._src import xla_bridge\n"
          "for m in pkgutil.walk_packages(sslax.__path__, 'sslax.'):\n"
          "  importlib.import_module(m.name)\n"
          "  assert not xla_bridge.backends_are_initialized(), m.name + ' initialized a JAX backend at import'\n")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
