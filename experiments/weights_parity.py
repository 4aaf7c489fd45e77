"""sslax weights against the real torchvision and timm models (where they import), both directions.

CI cannot import torchvision or timm (their PyPI wheels are CUDA builds that do not load beside
the CPU torch of the `test` extra), so tests/test_weights.py compares with their restatement in
tests/torch_reference.py. This script checks that restatement and the layouts against the real
libraries on a machine that has them:

  python experiments/weights_parity.py [--output runs/weights_parity.json]

For each model: export (sslax -> PyTorch: a strict `load_state_dict`), import (PyTorch's random
weights, batch-norm statistics randomized -> sslax), the largest output difference relative to
the output's largest magnitude, and whether tests/torch_reference.py has the same state-dict names
and shapes and gives the same outputs as the library's model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))


def _rel(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output", help="also write the rows as JSON here")
  args = parser.parse_args()
  try:
    import timm
    import torch
    import torchvision
  except Exception as e:  # noqa: BLE001 - a CUDA torchvision beside a CPU torch fails in many ways
    print(f"weights_parity: needs torch, torchvision and timm that import together ({type(e).__name__}: {e})",
          file=sys.stderr)
    return 2
  import jax.numpy as jnp
  from flax import nnx
  from safetensors.torch import load_file, save_file

  import torch_reference as ref
  from sslax.models.resnet import resnet
  from sslax.models.vit import vit
  from sslax.weights import export_encoder, load_pretrained

  torch.manual_seed(0)
  rng = np.random.RandomState(0)
  rows = []
  tmp = tempfile.mkdtemp()

  def randomize(module):
    for m in module.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.copy_(torch.randn(m.num_features) * 0.2)
        m.running_var.copy_(torch.rand(m.num_features) + 0.5)
        m.weight.data.copy_(torch.rand(m.num_features) + 0.5)

  def same_layout(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)

  for name, cifar, size in (("resnet18", True, 32), ("resnet18", False, 64), ("resnet34", False, 64),
                            ("resnet50", False, 64)):
    tv = getattr(torchvision.models, name)()
    tv.fc = torch.nn.Identity()
    if cifar:
      tv.conv1, tv.maxpool = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False), torch.nn.Identity()
    with torch.no_grad():
      randomize(tv)
    tv.eval()
    x = rng.randn(2, size, size, 3).astype(np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
      want = tv(xt).numpy()
    file = os.path.join(tmp, f"{name}{cifar}.safetensors")
    save_file({k: v.contiguous() for k, v in tv.state_dict().items()}, file)
    ours = resnet(name, cifar_stem=cifar, rngs=nnx.Rngs(0))
    load_pretrained(ours, file)
    imported = _rel(ours(jnp.asarray(x), train=False)[0], want)
    fresh = resnet(name, cifar_stem=cifar, rngs=nnx.Rngs(1))
    with torch.no_grad():
      for p in tv.parameters():
        p.add_(0.01 * torch.randn_like(p))
      want = tv(xt).numpy()
    save_file({k: v.contiguous() for k, v in tv.state_dict().items()}, file)
    load_pretrained(fresh, file)
    out = os.path.join(tmp, f"out-{name}{cifar}")
    export_encoder(fresh, out)
    tv2 = getattr(torchvision.models, name)()
    tv2.fc = torch.nn.Identity()
    if cifar:
      tv2.conv1, tv2.maxpool = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False), torch.nn.Identity()
    tv2.load_state_dict(load_file(os.path.join(out, "model.safetensors")), strict=True)
    with torch.no_grad():
      exported = _rel(tv2.eval()(xt).numpy(), np.asarray(fresh(jnp.asarray(x), train=False)[0]))
    block, layers = {"resnet18": (ref.BasicBlock, (2, 2, 2, 2)), "resnet34": (ref.BasicBlock, (3, 4, 6, 3)),
                     "resnet50": (ref.Bottleneck, (3, 4, 6, 3))}[name]
    restated = ref.ResNet(block, layers, cifar_stem=cifar)
    layout = same_layout(restated, tv)
    restated.load_state_dict(tv.state_dict(), strict=True)
    with torch.no_grad():
      restated_diff = _rel(restated.eval()(xt).numpy(), want)
    rows.append({"model": f"torchvision {name}" + (" (CIFAR stem)" if cifar else ""), "input": f"{size}x{size}",
                 "import": imported, "export": exported, "reference_layout_equal": layout,
                 "reference_output": restated_diff})

  for tname, ours_name, img, patch in (("vit_tiny_patch16_224", "vit_tiny", 32, 4),
                                       ("vit_small_patch16_224", "vit_small", 224, 16)):
    tm = timm.create_model(tname, pretrained=False, img_size=img, patch_size=patch, num_classes=0).eval()
    x = rng.randn(2, img, img, 3).astype(np.float32)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
      for p in tm.parameters():
        p.add_(0.02 * torch.randn_like(p))
      want = tm(xt).numpy()
    file = os.path.join(tmp, f"{tname}.safetensors")
    save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, file)
    ours = vit(ours_name, image_size=img, patch_size=patch, rngs=nnx.Rngs(0))
    load_pretrained(ours, file)
    imported = _rel(ours(jnp.asarray(x))[0], want)
    out = os.path.join(tmp, f"out-{tname}")
    cfg = export_encoder(ours, out)["config"]
    tm2 = timm.models.vision_transformer.VisionTransformer(
        img_size=cfg["img_size"], patch_size=cfg["patch_size"], in_chans=cfg["in_chans"], embed_dim=cfg["embed_dim"],
        depth=cfg["depth"], num_heads=cfg["num_heads"], mlp_ratio=cfg["mlp_ratio"], num_classes=0).eval()
    tm2.load_state_dict(load_file(os.path.join(out, "model.safetensors")), strict=True)
    with torch.no_grad():
      exported = _rel(tm2(xt).numpy(), want)
    restated = ref.VisionTransformer(**cfg)
    restated_keys = dict(restated.state_dict())
    layout = all(k in restated_keys and restated_keys[k].shape == v.shape for k, v in tm.state_dict().items())
    restated.load_state_dict(tm.state_dict(), strict=True)
    with torch.no_grad():
      restated_diff = _rel(restated.eval()(xt).numpy(), want)
    rows.append({"model": f"timm {tname} (img {img}, patch {patch})", "input": f"{img}x{img}", "import": imported,
                 "export": exported, "reference_layout_equal": layout, "reference_output": restated_diff})

  print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}\n")
  print("| model | input | import: rel. max diff | export: rel. max diff | tests/torch_reference.py names + shapes "
        "| its output: rel. max diff |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['model']} | {r['input']} | {r['import']:.1e} | {r['export']:.1e} | "
          f"{'equal' if r['reference_layout_equal'] else 'DIFFERENT'} | {r['reference_output']:.1e} |")
  if args.output:
    with open(args.output, "w") as f:
      json.dump(rows, f, indent=2)
  ok = all(r["import"] < 1e-4 and r["export"] < 1e-4 and r["reference_layout_equal"] and r["reference_output"] < 1e-4
           for r in rows)
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
