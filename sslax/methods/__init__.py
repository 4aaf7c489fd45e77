"""One module per method on the `Method` protocol (`sslax.methods.base`), found by name:
`make_method(config)` imports `sslax.methods.<config.method.name>`, which registers its class.

The shared parts: `base` (protocol, registry), `two_view` (the two-view image
methods), `language` (token-row methods).
"""
from sslax.methods.base import Method, MethodCard, available_methods, make_method, method_class, register

__all__ = ["Method", "MethodCard", "available_methods", "make_method", "method_class", "register"]
