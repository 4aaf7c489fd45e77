"""How the baseline scripts hand back their figures: the report printed as JSON, and written to
`--output` when one is given."""
import json


def emit(report: dict, output: str | None) -> None:
  print(json.dumps(report, indent=2))
  if output:
    with open(output, "w") as f:
      json.dump(report, f, indent=2)
