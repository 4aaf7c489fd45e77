"""Over a long small run (logging every 50, async checkpoints every quarter of the run but at
least 100 steps), the number of live device arrays stays constant and host memory grows by less
than 5%: 300 steps in the suite (three saves; a leak of one array per step or per save shows in
the count), `SSLAX_MEMORY_STEPS=1000` for the figure in RESULTS.md."""
import os

import jax

import sslax.train.loop as loop
from helpers import method_digits_config

STEPS = int(os.environ.get("SSLAX_MEMORY_STEPS", 300))


def _rss_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * 4096


def test_live_arrays_and_host_memory_stay_flat(tmp_path, monkeypatch):
  samples = {}
  to_global = loop.to_global
  calls = []

  def sampling_to_global(batch, mesh):  # called once per step, before it runs
    calls.append(None)
    step = len(calls)
    if step in (50, 100, STEPS // 2, STEPS - 1, STEPS):
      samples[step] = (len(jax.live_arrays()), _rss_bytes())
    return to_global(batch, mesh)

  monkeypatch.setattr(loop, "to_global", sampling_to_global)
  config = method_digits_config("simclr", **{
      "train.num_steps": STEPS, "train.batch_size": 8, "mesh.data": 2, "train.log_every": 50,
      "train.checkpoint_every": max(100, STEPS // 4), "eval.linear_probe": False})
  loop.train(config, str(tmp_path), progress=False)
  arrays = {step: n for step, (n, _) in samples.items()}
  assert len(set(arrays.values())) == 1, f"live device arrays per step: {arrays}"
  growth = samples[STEPS][1] / samples[100][1] - 1
  print(f"live arrays {arrays[STEPS]}; host RSS step 100 -> {STEPS}: {growth:+.2%}")
  assert growth < 0.05, f"host memory grew {growth:.1%} from step 100 to {STEPS}"
