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
