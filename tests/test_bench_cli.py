"""`sslax bench` from the package: recipes from a checkout's experiments/, any --config from anywhere,
the PyTorch references from experiments/bench_torch.py; bad paths are named."""
import json
import os

from helpers import ROOT
from sslax.cli import main


def test_bench_missing_references_are_named(capsys):
  assert main(["bench", "--references", "no/such/bench_torch.py", "--workloads", "bert"]) == 2
  assert "--references: expected the path of experiments/bench_torch.py" in capsys.readouterr().err


def test_bench_parses_its_own_arguments(capsys):
  import pytest

  with pytest.raises(SystemExit) as e:
    main(["bench", "--workloads", "bert", "--help"])
  assert e.value.code == 0
  assert "--compute_dtype" in capsys.readouterr().out


def test_bench_runs_outside_a_checkout_on_a_config_of_ones_own(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)  # no experiments/ here, as after `pip install sslax`
  monkeypatch.delenv("SSLAX_EXPERIMENTS", raising=False)
  assert main(["bench", "--workloads", "bert"]) == 2
  assert "--experiments: expected the folder of the recipes' configs" in capsys.readouterr().err
  (tmp_path / "mine.py").write_text("from sslax.quickstart import digits_config\n\n\n"
                                    "def get_config(arg=None):\n  return digits_config('smoke')\n")
  out = tmp_path / "bench.json"
  assert main(["bench", "--config", "mine.py", "--warmup", "0", "--rounds", "1", "--steps", "2",
               "--output", str(out)]) == 0
  written = json.loads(out.read_text())
  rows = written["rows"]
  # the machine travels with the timings: two machines' files can be compared
  assert written["info"]["cpu_model"] and written["info"]["isa"] and "xla_flags" in written["info"]
  assert [r["workload"] for r in rows] == ["simclr"] and len(rows[0]["sslax_times"]) == 2
  assert rows[0]["flops_per_step"] > 0 and rows[0]["sslax_s"] > 0
  assert "no PyTorch references" in capsys.readouterr().out


def test_the_bench_references_losses_equal_sslax_losses(monkeypatch):
  # the PyTorch side of `sslax bench` must time the same objective as sslax
  import numpy as np
  import torch

  from sslax.losses import byol_loss, nt_xent_loss

  monkeypatch.syspath_prepend(os.path.join(ROOT, "experiments"))  # undone after the test
  import bench_torch

  rng = np.random.default_rng(0)
  a, b, c, d = (rng.normal(size=(16, 8)).astype(np.float32) for _ in range(4))
  t = [torch.from_numpy(x) for x in (a, b, c, d)]
  np.testing.assert_allclose(float(bench_torch.nt_xent(t[0], t[1], 0.2)),
                             float(nt_xent_loss(a, b, temperature=0.2)[0]), rtol=1e-5)
  np.testing.assert_allclose(float(bench_torch.byol_loss(*t)), float(byol_loss(a, b, c, d)[0]), rtol=1e-5)
