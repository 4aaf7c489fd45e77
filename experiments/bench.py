"""`python experiments/bench.py ARGS` = `sslax bench ARGS` from this checkout (`sslax/bench.py`); the
PyTorch references are `bench_torch.py` beside this file. Other scripts here import the helpers."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("SSLAX_EXPERIMENTS", HERE)

from sslax.bench import RECIPES, _config, compiled_step, main, step_flops, step_inputs  # noqa: E402,F401

if __name__ == "__main__":
  sys.exit(main())
