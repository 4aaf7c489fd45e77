"""One module per method: how to build the model, which views to make, which loss."""
from sslax.methods.simclr import SimCLR

METHODS = {"simclr": SimCLR}


def make_method(config):
  """The method named by `config.method.name`, configured by `config`."""
  name = config.method.name
  if name not in METHODS:
    raise ValueError(f"method.name: expected one of {sorted(METHODS)}, got {name!r}")
  return METHODS[name](config)


__all__ = ["METHODS", "SimCLR", "make_method"]
