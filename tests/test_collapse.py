"""The collapse monitor: its formulas, and an alarm on a run forced to collapse."""
import warnings

import jax.numpy as jnp
import numpy as np

from helpers import method_digits_config
from sslax.eval import collapse_alarm, collapse_metrics
from sslax.train.loop import train
from sslax.train.metrics import read_metrics


def test_collapse_metrics_formulas():
  z = np.random.default_rng(0).normal(size=(512, 16))
  m = {k: float(v) for k, v in collapse_metrics(jnp.asarray(z)).items()}
  zn = z / np.linalg.norm(z, axis=1, keepdims=True)
  np.testing.assert_allclose(m["collapse/std"], np.mean(zn.std(0)), rtol=1e-4)
  np.testing.assert_allclose(m["collapse/std_ratio"], np.mean(zn.std(0)) * 4, rtol=1e-4)
  s = np.linalg.svd(z, compute_uv=False)
  p = s / s.sum()
  np.testing.assert_allclose(m["collapse/rank"], np.exp(-np.sum(p * np.log(p))), rtol=1e-3)
  assert 0.9 < m["collapse/std_ratio"] < 1.1 and m["collapse/rank"] > 14  # healthy: ~1 and ~D
  collapsed = {k: float(v) for k, v in collapse_metrics(jnp.ones((64, 16)) + 1e-7).items()}
  assert collapsed["collapse/std_ratio"] < 1e-3 and collapsed["collapse/rank"] < 1.01
  assert collapse_alarm(collapsed, std_ratio_threshold=0.1, rank_threshold=1.5)
  assert not collapse_alarm(m, std_ratio_threshold=0.1, rank_threshold=1.5)


def test_byol_without_predictor_and_tau_0_collapses_and_raises_the_alarm(tmp_path):
  config = method_digits_config("byol", **{"predictor.enabled": False, "method.base_tau": 0.0,
                                            "method.final_tau": 0.0, "optim.lr": 3e-2, "train.num_steps": 30,
                                            "train.log_every": 5, "train.checkpoint_every": 30,
                                            "eval.linear_probe": False})
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    train(config, str(tmp_path), progress=False)
  records = read_metrics(str(tmp_path))
  assert records[-1]["collapse/alarm"] == 1.0 and records[-1]["collapse/std_ratio"] < 0.1
  assert any("collapse alarm" in str(w.message) for w in caught)
