"""`sslax` on a machine without an accelerator picks the CPU quietly, even with libtpu installed."""
import os
import subprocess
import sys

from sslax.platforms import has_accelerator

_PROBE = ("from sslax.platforms import use_cpu_unless_accelerated as f; chosen = f(); import jax; "
          "print(chosen, jax.default_backend())")


def _run(env):
  return subprocess.run([sys.executable, "-c", _PROBE], check=False, env=env, capture_output=True, text=True,
                        timeout=300)


def test_no_accelerator_means_cpu_without_libtpu_noise():
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  out = _run(env)
  assert out.returncode == 0, out.stderr
  if has_accelerator():  # JAX chooses as always
    assert out.stdout.split()[0] == "None"
  else:
    assert out.stdout.split() == ["cpu", "cpu"]
    assert "TPU" not in out.stderr and "libtpu" not in out.stderr, out.stderr


def test_the_users_choice_stands():
  out = _run({**os.environ, "JAX_PLATFORMS": "cpu"})
  assert out.returncode == 0, out.stderr
  assert out.stdout.split() == ["None", "cpu"]
