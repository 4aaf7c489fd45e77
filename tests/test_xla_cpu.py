"""sslax.xla_cpu: when `import sslax` adds XLA:CPU's YNNPACK flag, and reading it back."""
from sslax.xla_cpu import YNN_FLAG, YNN_VALUE, add_cpu_flags, ynn_dots


def test_flag_added_once_when_asked_for_tested_jaxlib_only():
  assert not add_cpu_flags({}, jaxlib=(0, 10, 2))  # opt-in
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8", "SSLAX_XLA_CPU_FLAGS": "1"}
  assert add_cpu_flags(env, jaxlib=(0, 10, 2))
  assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=8 {YNN_FLAG}={YNN_VALUE}"
  assert YNN_VALUE == "dot,reduce" and ynn_dots(env)
  assert not add_cpu_flags(env, jaxlib=(0, 10, 2))  # already there: not twice
  for old_or_new in ((0, 4, 35), (0, 10, 1), (0, 11, 0)):
    env = {"SSLAX_XLA_CPU_FLAGS": "1"}
    assert not add_cpu_flags(env, jaxlib=old_or_new) and "XLA_FLAGS" not in env


def test_user_setting_and_opt_out_win():
  env = {"XLA_FLAGS": f"{YNN_FLAG}=eltwise", "SSLAX_XLA_CPU_FLAGS": "1"}
  assert not add_cpu_flags(env, jaxlib=(0, 10, 2)) and env["XLA_FLAGS"] == f"{YNN_FLAG}=eltwise"
  assert not ynn_dots(env)
  env = {"SSLAX_XLA_CPU_FLAGS": "0"}
  assert not add_cpu_flags(env, jaxlib=(0, 10, 2)) and "XLA_FLAGS" not in env


def test_ynn_dots_reads_the_last_setting():
  assert ynn_dots({"XLA_FLAGS": f"{YNN_FLAG}=eltwise,dot"})
  assert ynn_dots({"XLA_FLAGS": f"{YNN_FLAG}=+dot"})
  assert not ynn_dots({"XLA_FLAGS": f"{YNN_FLAG}=dot {YNN_FLAG}=reduce"})
  assert not ynn_dots({"XLA_FLAGS": f"{YNN_FLAG}=-dot"})
  assert not ynn_dots({})
