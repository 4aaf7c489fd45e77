"""mkdocs hook: adds the generated method pages (`docs/method_pages.py`) to the site and its nav at
build time, so they are never stale files in the repository. `mkdocs build --strict` fails when a
method has no card, or its card names a test, a loss or a RESULTS.md row that does not exist."""
import os
import sys

from mkdocs.structure.files import File

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import method_pages  # noqa: E402

_pages: dict[str, str] = {}


def on_config(config):
  from sslax.methods import method_class

  _pages.update(method_pages.pages())
  methods = ["methods/index.md"] + [{method_class(n).__name__: f"methods/{n}.md"}
                                    for n in method_pages.shipped_methods()]
  config.nav = [{"Methods": methods} if isinstance(item, dict) and "Methods" in item else item for item in config.nav]
  return config


def on_files(files, config):
  for path, markdown in _pages.items():
    files.append(File.generated(config, path, content=markdown))
  return files
