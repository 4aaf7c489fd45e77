"""`sslax plan`: the real train step compiled for a TPU topology from this CPU machine.

The compiling tests need libtpu (`jax[tpu]`, in the test extra); where it cannot be installed
they are skipped and say so. The parsing tests run everywhere.
"""
import json
import os

import pytest

from sslax.cli import main
from sslax.train.plan import collectives, link_bytes, parse_topology

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "simclr_digits.py:smoke")


def _needs_libtpu():
  pytest.importorskip("libtpu", reason="jax[tpu] (libtpu) is not installed here: pip install -e '.[plan]'")


def test_topology_names():
  assert parse_topology("v5p:4x4x4")[:2] == ("v5p", "v5p:4x4x4")
  assert parse_topology("v5p-128")[1] == "v5p:4x4x4"  # 128 cores = 64 chips
  assert parse_topology("v4-32")[1] == "v4:2x2x4"
  assert parse_topology("v5litepod-16")[1] == parse_topology("v5e-16")[1] == "v5e:4x4"
  with pytest.raises(ValueError, match=r"--topology: expected 'v5p:4x4x4' or an accelerator type .* got 'h100'"):
    parse_topology("h100")
  with pytest.raises(ValueError, match=r"expected a slice size of .* got 'v5e-12' \(12 chips\)"):
    parse_topology("v5e-12")


def test_collectives_are_read_from_hlo_with_tuple_shapes():
  hlo = "\n".join([
      "  %all-reduce.96 = (f32[16]{0:T(128)}, f32[]{:T(128)}, /*index=2*/f32[3,3,16,16]{3,2,1,0}) all-reduce(%a)",
      "  %all-gather-start.1 = (f32[8,32]{1,0}, f32[64,32]{1,0}) all-gather-start(%b), dimensions={0}",
      "  %fusion.3 = f32[32,32]{1,0} fusion(%all-reduce.96, %c), kind=kLoop",
      "  ROOT %reduce-scatter.2 = bf16[128]{0} reduce-scatter(%d), dimensions={0}",
      # a windowed all-gather's ring step: (operand, destination, two u32 context words)
      "  %collective-permute-start = (bf16[3,3,3,1,4]{2,4,3,1,0:T(4,128)(2,1)S(1)}, bf16[3,3,3,1,4]{2,4,3,1,0:T(4,128)"
      "(2,1)S(1)}, u32[]{:S(2)}, u32[]{:S(2)}) collective-permute-start(%e), channel_id=45",
  ])
  got = collectives(hlo)
  assert got["all-reduce"] == {"count": 1, "bytes": 4 * (16 + 1 + 3 * 3 * 16 * 16)}
  assert got["all-gather"] == {"count": 1, "bytes": 4 * 64 * 32}  # the destination of the async start
  assert got["reduce-scatter"] == {"count": 1, "bytes": 2 * 128}
  assert got["collective-permute"] == {"count": 1, "bytes": 2 * 3 * 3 * 3 * 4}
  assert set(got) == {"all-reduce", "all-gather", "reduce-scatter", "collective-permute"}
  assert link_bytes("all-reduce", 100.0, 4) == 150.0 and link_bytes("all-gather", 100.0, 1) == 0.0


def test_plan_compiles_a_smoke_recipe_for_a_tpu_slice_and_reports_per_chip(tmp_path, capsys):
  _needs_libtpu()
  out = tmp_path / "plan.json"
  assert main(["plan", "--config", SMOKE, "--topology", "v5e:2x2", "--output", str(out)]) == 0
  printed = capsys.readouterr().out
  (report,) = json.loads(out.read_text())
  assert report["fits"] and report["devices"] == 4 and report["chip"] == "TPU v5e"
  m = report["memory"]
  assert 0 < m["total"] < m["hbm"] == 16 * 1024 ** 3
  assert m["arguments"] > 0 and m["aliased"] > 0  # the state is donated: outputs reuse its buffers
  assert report["flops_per_chip"] > 0 and report["time"]["step"] > 0 and 0 < report["mfu"] <= 1
  # data parallelism: gradients are all-reduced, at least one float per parameter
  assert report["collectives"]["all-reduce"]["bytes"] > 4 * 10_000
  for text in ("v5e:2x2 (4 x TPU v5e), global batch 64 (16 per chip)", "memory per chip:", "of 16 GiB HBM",
               "FLOPs per chip per step:", "collectives: ", "roofline: compute", "chip figures used: 197 TFLOP/s"):
    assert text in printed


def test_plan_says_an_oversized_batch_does_not_fit_with_the_compilers_figures(capsys):
  _needs_libtpu()
  assert main(["plan", "--config", SMOKE, "--topology", "v5e:2x2", "--batch_size", str(1 << 23)]) == 0
  printed = capsys.readouterr().out
  assert "does NOT fit:" in printed and "RESOURCE_EXHAUSTED" in printed and "HBM" in printed
  assert "Traceback" not in printed


def test_plan_names_a_batch_that_the_slice_cannot_split(capsys):
  _needs_libtpu()
  assert main(["plan", "--config", SMOKE, "--topology", "v5e:2x2", "--batch_size", "66"]) == 2
  assert "train.batch_size: expected a multiple of the 4 devices of v5e:2x2, got 66" in capsys.readouterr().err


def test_largest_batch_search_doubles_then_narrows(monkeypatch):
  import sslax.train.plan as plan_module

  tried = []

  def fake_compile(config, devices, batch_size):  # fits up to 37 per device on 4 devices
    tried.append(batch_size // 4)
    if batch_size // 4 > 37:
      raise MemoryError("RESOURCE_EXHAUSTED: fake")
    return object()

  monkeypatch.setattr(plan_module, "compile_step", fake_compile)
  devices = [None] * 4
  best = plan_module.largest_batch_per_chip(None, devices, start=8)
  assert 37 * 7 / 8 <= best <= 37 and tried[:4] == [8, 16, 32, 64]
  assert plan_module.largest_batch_per_chip(None, devices, start=100) <= 37  # halving down from a start too big
  monkeypatch.setattr(plan_module, "compile_step", lambda *a: (_ for _ in ()).throw(MemoryError("no")))
  assert plan_module.largest_batch_per_chip(None, devices, start=4) == 0
