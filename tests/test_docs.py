"""The documentation stays true: docstring examples run as doctests, every method's card points at
tests, a loss and RESULTS.md rows that exist, and the site builds with warnings as errors."""
import doctest
import importlib
import os
import pkgutil
import subprocess
import sys

import pytest

import sslax
from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "docs"))
import method_pages  # noqa: E402


def _modules_with_examples():
  for info in pkgutil.walk_packages(sslax.__path__, "sslax."):
    path = importlib.util.find_spec(info.name).origin
    if path and path.endswith(".py") and ">>>" in open(path).read():
      yield info.name


@pytest.mark.parametrize("name", sorted(_modules_with_examples()))
def test_docstring_examples_run(name):
  module = importlib.import_module(name)
  result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
  assert result.attempted > 0 and result.failed == 0, f"{name}: {result}"


def test_every_method_card_points_at_what_exists():
  assert method_pages.problems() == []
  page = method_pages.method_page("simclr")
  assert "tests/test_losses.py::test_nt_xent_matches_formula" in page and "| SimCLR | 0." in page


def test_the_site_builds_with_warnings_as_errors(tmp_path):
  run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-4000:]
  for page in ("index.html", "design/index.html", "methods/simclr/index.html", "api/losses/index.html",
               "howto/own_data/index.html"):
    assert (tmp_path / "site" / page).exists(), page
  assert "nt_xent_loss" in (tmp_path / "site" / "api" / "losses" / "index.html").read_text()
