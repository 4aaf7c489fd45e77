"""The README's "Weights out to PyTorch" example, measured: an sslax-pretrained ResNet-18 exported
with `sslax export`, loaded by torchvision, probed in PyTorch + scikit-learn on the same split as
`sslax eval`.

  sslax train --config experiments/simclr_digits.py --workdir runs/export_digits \
      --set "model.name='resnet18'" --set model.width=None --set train.num_steps=300 --set train.knn_every=0
  python experiments/export_torch_probe.py --workdir runs/export_digits

Prints (and writes to <workdir>/torch_probe.json): `sslax eval`'s linear-probe and kNN top-1, the
largest difference between torchvision's and sslax's features, sslax's own linear probe on the
PyTorch features, and the top-1 of the README's scikit-learn probe on them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "simclr_digits.py")
OVERRIDES = ["--set", "model.name='resnet18'", "--set", "model.width=None", "--set", "train.num_steps=300",
             "--set", "train.knn_every=0"]


def torch_features(weights: str):
  """The README's PyTorch lines: torchvision's resnet18 with the CIFAR stem for 1-channel digits,
  the exported weights, features of the same train / test split and normalization as sslax eval."""
  import torch
  import torchvision
  from safetensors.torch import load_file

  from sslax.data import digits_arrays

  net = torchvision.models.resnet18()
  net.conv1, net.maxpool, net.fc = torch.nn.Conv2d(1, 64, 3, 1, 1, bias=False), torch.nn.Identity(), torch.nn.Identity()
  net.load_state_dict(load_file(weights), strict=True)
  net.eval()

  def feats(split):
    x, y = digits_arrays(split)  # uint8 [N, 8, 8, 1], the fixed stratified 70/30 split
    x = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - 0.3) / 0.4  # augment.mean / std
    with torch.no_grad():
      return net(x).numpy(), y

  return feats("train"), feats("test")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/export_digits")
  args = parser.parse_args()
  out = os.path.join(args.workdir, "exported")
  sslax = [sys.executable, "-m", "sslax.cli"]
  if not os.path.exists(os.path.join(out, "model.safetensors")):
    subprocess.run([*sslax, "export", "--config", CONFIG, "--workdir", args.workdir, "--output", out, *OVERRIDES],
                   check=True)
  report_file = os.path.join(args.workdir, "eval_report.json")
  if not os.path.exists(report_file):
    subprocess.run([*sslax, "eval", "--config", CONFIG, "--workdir", args.workdir, "--output", report_file,
                    "--no_progress", *OVERRIDES], check=True)
  report = json.load(open(report_file))

  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler

  (train_x, train_y), (test_x, test_y) = torch_features(os.path.join(out, "model.safetensors"))
  scaler = StandardScaler().fit(train_x)
  sklearn_top1 = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y).score(
      scaler.transform(test_x), test_y)


  from sslax.config import apply_overrides, load_config
  from sslax.eval import extract_features
  from sslax.eval.linear_probe import linear_probe
  from sslax.data import get_source
  from sslax.methods import make_method
  from sslax.train import build_optimizer, create_train_state, make_mesh
  from sslax.train.loop import make_checkpointer
  from sslax.data import train_dataset

  config = apply_overrides(load_config(CONFIG), OVERRIDES[1::2])
  method = make_method(config)
  mesh = make_mesh(config.mesh)
  state = create_train_state(method, build_optimizer(method, config, config.train.num_steps), config.seed)
  ckpt = make_checkpointer(config, args.workdir)
  state, _ = ckpt.restore(state, iter(train_dataset(get_source(config.data, "train"), global_batch_size=256, seed=0,
                                                    transform=method.inputs.transform())))
  ckpt.close()
  ours = extract_features(method, state, get_source(config.data, "test"), mesh, batch_size=512)
  ours_x = np.asarray(ours[0])
  feature_diff = float(np.abs(ours_x - test_x).max() / np.abs(test_x).max())
  ours_probe = linear_probe(train_x, train_y, test_x, test_y)["top1"]
  result = {"sslax_eval_linear_top1": report["linear_top1"], "sslax_eval_knn_top1": report["knn_top1"],
            "feature_rel_max_diff": feature_diff, "sslax_probe_on_torch_features": ours_probe,
            "sklearn_probe_on_torch_features": float(sklearn_top1), "step": report["step"]}
  print(json.dumps(result, indent=2))
  with open(os.path.join(args.workdir, "torch_probe.json"), "w") as f:
    json.dump(result, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
