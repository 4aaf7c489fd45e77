"""SimCLR on scikit-learn's bundled digits: the quickstart's config (`smoke` for tests)."""
from sslax.quickstart import digits_config

VARIANTS = ("default", "smoke")


def get_config(arg: str | None = None):
  return digits_config(arg)
