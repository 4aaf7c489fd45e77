"""Forces 8 host devices before JAX is imported, so every test run exercises sharding."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def devices():
  assert jax.device_count() == 8, "tests expect 8 forced host devices"
  return jax.devices()
