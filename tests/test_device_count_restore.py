"""A checkpoint written on 8 devices restores on 4 and on 1 with identical values, and training
continues there (the mesh is the only thing that changes)."""
import shutil

import jax
import numpy as np
import pytest

from helpers import SMOKE, method_digits_config
from sslax.data import get_source, train_dataset
from sslax.methods import make_method
from sslax.train import build_optimizer, create_train_state, make_mesh, state_sharding
from sslax.train.loop import make_checkpointer, num_train_steps, train
from sslax.train.metrics import read_metrics


def _config(devices):
  # the SimCLR smoke recipe: its steps on 8 and 1 devices are those of tests/test_methods.py (cache hits)
  return method_digits_config("simclr", **{**SMOKE, "train.checkpoint_every": 2, "train.log_every": 1,
                                         "mesh.data": devices})


def _restore(config, workdir):
  mesh = make_mesh(config.mesh)
  method = make_method(config)
  source = get_source(config.data, config.data.train_split)
  optimizer = build_optimizer(method, config, num_train_steps(config, len(source)))
  state = jax.device_put(create_train_state(method, optimizer, config.seed), state_sharding(mesh))
  ckpt = make_checkpointer(config, workdir)
  state, _ = ckpt.restore(state, iter(train_dataset(source, global_batch_size=config.train.batch_size,
                                                    seed=config.seed)))
  ckpt.close()
  return state


@pytest.fixture(scope="module")
def saved_on_8(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("on8"))
  assert train(_config(8), workdir, progress=False, stop_at=2) is None
  return workdir, jax.device_get(_restore(_config(8), workdir))


@pytest.mark.parametrize("devices", [4, 1])
def test_restore_on_fewer_devices_and_continue(saved_on_8, tmp_path, devices):
  source_dir, reference = saved_on_8
  workdir = str(tmp_path / "run")
  shutil.copytree(source_dir, workdir)
  state = _restore(_config(devices), workdir)
  assert {d for leaf in jax.tree.leaves(state) for d in leaf.devices()} == set(jax.devices()[:devices])
  for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(jax.device_get(state)), strict=True):
    np.testing.assert_array_equal(a, b)
  # training goes on from step 2 on the smaller mesh
  assert train(_config(devices), workdir, progress=False, stop_at=3) is None
  losses = {r["step"]: r["loss"] for r in read_metrics(workdir) if "loss" in r}
  assert sorted(losses) == list(range(1, 4)) and all(np.isfinite(v) for v in losses.values())
