"""The README's Python example runs as written."""
import os
import re

from helpers import ROOT


def test_readme_python_example_runs(monkeypatch, capsys):
  text = open(os.path.join(ROOT, "README.md")).read()
  (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
  monkeypatch.chdir(ROOT)
  exec(compile(code, "README.md", "exec"), {})
  assert float(capsys.readouterr().out.strip()) > 0


def test_readme_starts_with_the_two_commands():
  text = open(os.path.join(ROOT, "README.md")).read()
  blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
  assert "sslax quickstart" in blocks[0] and "pytest" in blocks[1]
  ci = open(os.path.join(ROOT, ".ci", "run")).read()
  assert blocks[1].strip() in ci  # CI runs the README's test command verbatim
