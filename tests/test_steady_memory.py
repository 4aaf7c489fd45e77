"""Over a long small run (logging every 50, async checkpoints every quarter of the run but at
least 100 steps), the number of live device arrays stays constant and host memory grows by less
than 5%: 300 steps in the suite (three saves; a leak of one array per step or per save shows in
the count), `SSLAX_MEMORY_STEPS=1000` for the figure in RESULTS.md.

The run also sets `train.guard_host_sync`: its steady-state steps (all but those that log, save or
monitor) run with device-to-host transfers disallowed, so a host sync creeping into the loop
(reading `state.step` to decide on a save, a metric turned into a float) fails here. JAX's
transfer guard does not fire on the CPU backend (its arrays already live in host memory), so the
tests also make every host read of a `jax.Array` in the loop's thread raise inside the guarded
block (`_strict_guard`), which is what the guard does on GPUs and TPUs."""
import contextlib
import os
import threading

import jax

import sslax.train.loop as loop
from helpers import method_digits_config

STEPS = int(os.environ.get("SSLAX_MEMORY_STEPS", 300))


def _rss_bytes() -> int:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * 4096


def _strict_guard(monkeypatch):
  """The loop's guarded blocks, where a host read of any device array (`np.asarray`, `float`,
  `jax.device_get`: all go through `ArrayImpl._value`) from the loop's thread raises."""
  from jax._src.array import ArrayImpl

  guarded = threading.local()
  value = ArrayImpl._value

  def checked(self):
    if getattr(guarded, "on", False):
      raise RuntimeError("disallowed device-to-host transfer in a steady-state step")
    return value.fget(self)

  real = loop._host_sync_guard

  @contextlib.contextmanager
  def strict(on):
    guarded.on = on
    try:
      with real(on):
        yield
    finally:
      guarded.on = False

  monkeypatch.setattr(ArrayImpl, "_value", property(checked))
  monkeypatch.setattr(loop, "_host_sync_guard", strict)


def test_live_arrays_and_host_memory_stay_flat(tmp_path, monkeypatch):
  _strict_guard(monkeypatch)
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
      "train.checkpoint_every": max(100, STEPS // 4), "eval.linear_probe": False, "train.guard_host_sync": True})
  loop.train(config, str(tmp_path), progress=False)
  arrays = {step: n for step, (n, _) in samples.items()}
  assert len(set(arrays.values())) == 1, f"live device arrays per step: {arrays}"
  growth = samples[STEPS][1] / samples[100][1] - 1
  print(f"live arrays {arrays[STEPS]}; host RSS step 100 -> {STEPS}: {growth:+.2%}")
  assert growth < 0.05, f"host memory grew {growth:.1%} from step 100 to {STEPS}"


def test_the_host_sync_guard_catches_a_read_of_the_step(tmp_path, monkeypatch):
  """The guard is real: a checkpointer that reads `state.step` from the device (as the loop did
  before it passed the step it knows) fails the first steady-state step, naming the transfer."""
  import pytest

  from sslax.train.checkpoint import Checkpointer

  _strict_guard(monkeypatch)
  save = Checkpointer.save
  monkeypatch.setattr(Checkpointer, "save", lambda self, state, it, step=None, force=False: save(self, state, it,
                                                                                                  force=force))
  config = method_digits_config("simclr", **{
      "train.num_steps": 4, "train.batch_size": 8, "mesh.data": 2, "train.log_every": 50,
      "train.checkpoint_every": 100, "eval.linear_probe": False, "train.guard_host_sync": True})
  with pytest.raises(Exception, match=r"(?i)disallowed device-to-host transfer"):
    loop.train(config, str(tmp_path), progress=False)
