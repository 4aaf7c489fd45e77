"""README command 1's job, `sslax quickstart`, at its smoke size through the same code path."""
import json
import re

import numpy as np
from PIL import Image


def test_quickstart_pretrains_probes_and_writes_its_report(tmp_path, capsys):
  from sslax.cli import main

  workdir = tmp_path / "quickstart"
  assert main(["quickstart", "--variant", "smoke", "--workdir", str(workdir), "--no_progress"]) == 0
  printed = capsys.readouterr().out
  report = json.loads((workdir / "report.json").read_text())
  assert report["steps"] == 6
  # digits' pixels are linearly separable (~0.97) and a ResNet's random features nearly so; after 6
  # steps SimCLR's are not yet better than random ones, but far above chance (0.1): a probe of
  # collapsed features or of labels out of line with their images would sit near 0.1
  assert report["raw_pixels_top1"] > 0.9
  assert report["random_init_top1"] > 0.5 and report["simclr_top1"] > 0.5 and report["simclr_knn_top1"] > 0.5
  markdown = (workdir / "report.md").read_text()
  assert markdown in printed  # what it prints is what it saves
  rows = dict(re.findall(r"\| \((\w)\) [^|]+ \| (\d\.\d{4}) \|", markdown))
  assert rows == {"a": f"{report['raw_pixels_top1']:.4f}", "b": f"{report['random_init_top1']:.4f}",
                  "c": f"{report['simclr_top1']:.4f}"}
  for name in ("loss_curve.png", "embedding_tsne.png"):
    with Image.open(workdir / name) as image:
      pixels = np.asarray(image.convert("L"))
    assert pixels.shape[0] > 200 and pixels.std() > 10, name  # a drawn plot, not a blank canvas
