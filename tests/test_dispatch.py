"""`OneStepAhead`: the loop waits for the step before last, never more than one step behind."""
import jax

import sslax.dispatch as dispatch


def test_each_call_waits_for_the_outputs_of_the_call_before(monkeypatch):
  waited = []
  monkeypatch.setattr(dispatch.jax, "block_until_ready", lambda x: waited.append(x) or x)
  ahead = dispatch.OneStepAhead()
  for i in range(4):
    ahead({"loss": i})
    assert waited == [{"loss": j} for j in range(i)]  # step i waits for step i - 1 only


def test_it_reads_real_arrays():
  ahead = dispatch.OneStepAhead()
  step = jax.jit(lambda x: x + 1)
  x = jax.numpy.zeros(3)
  for _ in range(3):
    x = step(x)
    ahead(x)
  assert float(x[0]) == 3.0
