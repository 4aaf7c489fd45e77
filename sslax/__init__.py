"""sslax: self-supervised pretraining in JAX/Flax."""
__version__ = "0.1.0"

from sslax.xla_cpu import add_cpu_flags as _add_cpu_flags

_add_cpu_flags()  # opt-in (SSLAX_XLA_CPU_FLAGS=1): XLA reads XLA_FLAGS when its first backend starts
