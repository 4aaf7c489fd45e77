"""The README's Python example runs as written."""
import os
import re

import numpy as np

from helpers import ROOT


def test_readme_python_example_runs(monkeypatch, capsys):
  text = open(os.path.join(ROOT, "README.md")).read()
  # the "Using the pieces" block (the PyTorch one under "Weights in and out" needs torchvision, and
  # experiments/export_torch_probe.py runs its lines)
  (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "make_train_step" in b]
  monkeypatch.chdir(ROOT)
  scope = {}
  exec(compile(code, "README.md", "exec"), scope)
  printed = float(capsys.readouterr().out.strip())
  assert np.float32(printed) == np.float32(scope["metrics"]["loss"]) and int(scope["state"].step) == 1
  assert float(scope["metrics"]["nonfinite"]) == 0.0  # the update was applied
  # NT-Xent at random init, where each view's 2N - 1 = 127 candidates are about equally similar:
  # about log(127) = 4.84 (a loss summed instead of averaged, a dropped log or a flipped sign is far off)
  assert abs(printed - np.log(127)) < 1.0, printed


def test_readme_starts_with_the_two_commands():
  text = open(os.path.join(ROOT, "README.md")).read()
  blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
  assert "sslax quickstart" in blocks[0] and "pytest" in blocks[1]
  ci = open(os.path.join(ROOT, ".ci", "run")).read()
  assert blocks[1].strip() in ci  # CI runs the README's test command verbatim
