"""`sslax bench` hands its arguments to experiments/bench.py; a missing script is named."""
import os

from helpers import ROOT
from sslax.cli import main


def test_bench_missing_script_is_named(capsys):
  assert main(["bench", "--script", "no/such/bench.py", "--workloads", "bert"]) == 2
  assert "--script: expected the path of experiments/bench.py" in capsys.readouterr().err


def test_bench_script_parses_its_own_arguments(capsys):
  import pytest

  with pytest.raises(SystemExit) as e:
    main(["bench", "--script", os.path.join(ROOT, "experiments", "bench.py"), "--workloads", "bert", "--help"])
  assert e.value.code == 0
  assert "--compute_dtype" in capsys.readouterr().out


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
