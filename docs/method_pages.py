"""The method pages of the documentation, generated from the code so that they cannot drift.

For each registered method (`sslax.methods.available_methods()`): its `MethodCard`, its module and
class docstrings, the docstring of its loss, its inputs, the `experiments/` configs whose default
variant names it, and the rows of `experiments/RESULTS.md` its card points to. `problems()` lists
what does not hold (a method without a card, a test or a loss that does not exist, a RESULTS row
that is not there); the docs build (`docs/hooks.py`) and `tests/test_docs.py` fail on any.

  python docs/method_pages.py      # prints the problems, or the pages' names
"""
from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from functools import lru_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ("contrastive", "self-distillation", "redundancy reduction", "masked prediction", "autoregressive",
            "quantized contrastive", "clustering", "pretext", "word embeddings", "transfer")


def _first_paragraphs(doc: str | None, n: int = 2) -> str:
  parts = [p.strip() for p in inspect.cleandoc(doc or "").split("\n\n") if p.strip()]
  return "\n\n".join(parts[:n])


@lru_cache(maxsize=1)
def experiment_configs() -> dict[str, list[tuple[str, tuple[str, ...], object]]]:
  """method name -> [(experiments/<file>.py, its variants, its default config)] for every experiment
  file that defines `get_config`."""
  from sslax.config import load_config

  out: dict[str, list] = {}
  folder = os.path.join(ROOT, "experiments")
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if not name.endswith(".py") or "def get_config" not in open(path).read():
      continue
    config = load_config(path)
    spec = importlib.util.spec_from_file_location(f"_variants_{name[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
      spec.loader.exec_module(module)
    finally:
      sys.path.remove(folder)
    variants = tuple(getattr(module, "VARIANTS", ()))
    out.setdefault(config.method.name, []).append((f"experiments/{name}", variants, config))
  return out


def _all_configs() -> list[tuple[str, tuple[str, ...], object]]:
  return sorted((entry for entries in experiment_configs().values() for entry in entries), key=lambda e: e[0])


def _results_sections() -> dict[str, str]:
  with open(os.path.join(ROOT, "experiments", "RESULTS.md")) as f:
    text = f.read()
  sections = {}
  for chunk in re.split(r"^## ", text, flags=re.M)[1:]:
    heading, _, body = chunk.partition("\n")
    sections[heading.strip()] = body
  return sections


def result_rows(results: tuple[str, ...]) -> tuple[str, list[tuple[str, list[str]]]]:
  """(heading, [(the command block before a table, the table's header and matching rows)]) for a
  card's `results`; ValueError when the section or a row is missing."""
  start, keys = results[0], results[1:]
  sections = _results_sections()
  heading = next((h for h in sections if h.startswith(start)), None)
  if heading is None:
    raise ValueError(f"no RESULTS.md section starting with {start!r}")
  out, found = [], set()
  table: list[str] = []
  code: list[str] | None = None
  command = ""
  for line in sections[heading].splitlines() + [""]:
    if line.startswith("```"):
      if code is None and line.startswith("```bash"):
        code = []
      elif code is not None:
        command, code = "\n".join(code).strip(), None
      continue
    if code is not None:
      code.append(line)
      continue
    if line.startswith("|"):
      table.append(line)
      continue
    if len(table) > 2:
      rows = [r for r in table[2:] if any(r.split("|")[1].strip().startswith(k) for k in keys)]
      found |= {k for k in keys for r in rows if r.split("|")[1].strip().startswith(k)}
      if rows:
        out.append((command, table[:2] + rows))
    table = []
  missing = [k for k in keys if k not in found]
  if missing:
    raise ValueError(f"RESULTS.md section {heading!r} has no table row starting with {missing}")
  return heading, out


def _test_exists(spec: str) -> bool:
  path, _, name = spec.partition("::")
  full = os.path.join(ROOT, path)
  return os.path.exists(full) and re.search(rf"^def {re.escape(name)}\(", open(full).read(), re.M) is not None


def _loss(dotted: str):
  module, _, name = dotted.rpartition(".")
  return getattr(importlib.import_module(module), name)


def shipped_methods() -> list[str]:
  """The methods of this package (`sslax/methods/`), not ones a user or a test registered."""
  from sslax.methods import available_methods, method_class

  return [n for n in available_methods() if method_class(n).__module__.startswith("sslax.methods.")]


def problems() -> list[str]:
  """What keeps the method pages from being true; empty when every page can be built."""
  from sslax.methods import method_class
  from sslax.methods.downstream import Downstream

  out = []
  for name in shipped_methods():
    card = method_class(name).card
    if card is None:
      out.append(f"method {name!r}: no `card = MethodCard(...)` on its class")
      continue
    if card.family not in FAMILIES:
      out.append(f"method {name!r}: card.family {card.family!r} is not one of {FAMILIES}")
    for spec in card.tests:
      if not _test_exists(spec):
        out.append(f"method {name!r}: card.tests names {spec!r}, which does not exist")
    if card.loss:
      try:
        _loss(card.loss)
      except (ImportError, AttributeError):
        out.append(f"method {name!r}: card.loss {card.loss!r} cannot be imported")
    if card.results:
      try:
        result_rows(card.results)
      except ValueError as e:
        out.append(f"method {name!r}: card.results: {e}")
    # downstream heads run on a pretraining config (`sslax finetune`, experiments/squad_qa.py)
    if name not in experiment_configs() and not issubclass(method_class(name), Downstream):
      out.append(f"method {name!r}: no experiments/*.py config names it")
  return out


def _inputs(name: str) -> str:
  from sslax.methods import make_method

  configs = experiment_configs().get(name)
  if not configs:
    return "a pretrained network's inputs (the pretraining method's `probe_inputs`), with the labels of the probe data"
  inputs = make_method(configs[0][2]).inputs
  doc = _first_paragraphs(type(inputs).__doc__, 1)
  return f"`{type(inputs).__name__}` ({configs[0][0]}): {doc}"


def method_page(name: str) -> str:
  from sslax.methods import method_class

  cls = method_class(name)
  card = cls.card
  module = sys.modules[cls.__module__]
  out = [f"# {cls.__name__}: `method.name = \"{name}\"`", "",
         f"**Family:** {card.family}. **Paper:** {card.paper}.", "",
         _first_paragraphs(module.__doc__), ""]
  if cls.__doc__ and cls.__doc__ != module.__doc__:
    out += [_first_paragraphs(cls.__doc__), ""]
  out += ["## Objective", "", card.objective + ".", ""]
  if card.loss:
    loss = _loss(card.loss)
    out += [f"The loss is [`{card.loss}`](../api/losses.md#{loss.__module__}.{loss.__name__}), a pure function of "
            "arrays:", "", "```text", inspect.cleandoc(loss.__doc__ or ""), "```", ""]
  else:
    out += [f"The loss is written in `{cls.__module__}` (`{cls.__name__}.loss`).", ""]
  out += ["## Inputs", "", _inputs(name), "", "## Configs", ""]
  configs = experiment_configs().get(name, [])
  if configs:
    out += ["| config | variants | data | model |", "|---|---|---|---|"]
    for path, variants, config in configs:
      data = config.data.get("name") if config.data.source == "tfds" else config.data.source
      out.append(f"| `{path}` | {', '.join(f'`{v}`' for v in variants) or 'one'} | {data} | "
                 f"{config.model.get('name', '?')} |")
    out += ["", f"`sslax train --config {configs[0][0]}:<variant> --workdir runs/{name}` pretrains; "
            f"`sslax eval --config {configs[0][0]}:<variant> --random_init` gives the same network's "
            "random-init baseline.", ""]
  elif getattr(method_class(name), "driver", None):
    driver = method_class(name).driver
    out += [f"Run by `python {driver} --config <pretraining config> --workdir <its run>` (or `--random_init`), "
            "which builds the labelled rows and scores the predictions; it has no pretraining config of its own.", ""]
  else:
    tagging = name == "tag"
    users = [path for path, _, c in _all_configs() if c.get("eval", {}).get("probe_data") is not None
             and bool(c.eval.probe_data.get("tag_key")) == tagging]
    out += ["Run by `sslax finetune` on a pretraining config whose `eval.probe_data` is "
            + ("word-tagged" if tagging else "labelled per example") + ": "
            + ", ".join(f"`{p}`" for p in users) + " (see [reading a fine-tuning report]"
            "(../howto/reports.md#fine-tuning)). It has no pretraining config of its own.", ""]
  out += ["## Reference and tests", "", f"Follows {card.reference}. Checked by:", ""]
  out += [f"- `{spec}`" for spec in card.tests] + [""]
  out += ["## Measured", ""]
  if card.results:
    heading, tables = result_rows(card.results)
    out += [f"From `experiments/RESULTS.md`, *{heading}* (the section says how each figure was measured).", ""]
    shown = None
    for command, rows in tables:
      if command and command != shown:
        out += ["Produced by:", "", "```bash", command, "```", ""]
        shown = command
      out += rows + [""]
  else:
    out += ["No real-data figure yet: `experiments/RESULTS.md` says why in the section of the method's "
            "family; the tests above are what is checked.", ""]
  return "\n".join(out)


def index_page() -> str:
  from sslax.methods import method_class

  out = ["# Methods", "",
         "Every registered method, by family. Each page is generated from the method's code at build "
         "time (`docs/method_pages.py`): its card, docstrings, loss, configs and measured rows.", ""]
  for family in FAMILIES:
    names = [n for n in shipped_methods() if method_class(n).card.family == family]
    if not names:
      continue
    out += [f"## {family.capitalize()}", "", "| method | paper | configs |", "|---|---|---|"]
    for n in names:
      configs = ", ".join(f"`{p}`" for p, _, _ in experiment_configs().get(n, [])) or "`sslax finetune`"
      out.append(f"| [{method_class(n).__name__}]({n}.md) | {method_class(n).card.paper} | {configs} |")
    out.append("")
  return "\n".join(out)


def pages() -> dict[str, str]:
  """docs-relative path -> Markdown of every generated page; ValueError listing `problems()`."""
  found = problems()
  if found:
    raise ValueError("the method pages cannot be built:\n  " + "\n  ".join(found))
  return {"methods/index.md": index_page(), **{f"methods/{n}.md": method_page(n) for n in shipped_methods()}}


if __name__ == "__main__":
  sys.path.insert(0, ROOT)
  found = problems()
  print("\n".join(found) if found else "\n".join(pages()))
  sys.exit(1 if found else 0)
