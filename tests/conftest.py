"""Forces 8 host devices before JAX is imported, so every test run exercises sharding.

Also points JAX's persistent compilation cache at one folder per machine,
shared by the xdist workers and the subprocesses that the preemption and
kill tests start (they inherit the environment): the same train step is
compiled once per suite, not once per process. Entries are keyed by the
program and the JAX version, so a stale folder is only ever a cache miss.
Every program is cached, however quickly it compiled: a process starts by
compiling ~100 small ones (parameter init, eager ops), and reading them back
saves each subprocess of the preemption tests ~4 s of its ~33.

Tests compile many small programs and run each a few steps, so XLA's CPU
backend optimizes less (`--xla_backend_optimization_level=0`): compiling
dominates and gets about a third faster; results are compared run against
run under the same flags. Benchmarks and experiments keep the defaults.

XLA:CPU's 40 s collective-rendezvous timeout stays at its default: if a queue of 8-device steps
deadlocks again (jaxlib 0.10.2; see sslax/dispatch.py), the worker fails fast instead of hanging.
"""
import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"sslax-tests-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def devices():
  assert jax.device_count() == 8, "tests expect 8 forced host devices"
  return jax.devices()


_SLOWEST_FIRST = ("test_preemption.py", "test_multiprocess.py", "test_steady_memory.py", "test_device_count_restore.py")


def pytest_collection_modifyitems(config, items):
  """Starts the longest tests first, so with xdist they do not run alone at the end."""
  items.sort(key=lambda item: next((i for i, name in enumerate(_SLOWEST_FIRST) if item.nodeid.startswith(
      f"tests/{name}")), len(_SLOWEST_FIRST)))
