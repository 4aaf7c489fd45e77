"""The grain iterator position is checkpointed with the state: after a restore no example is
missing or repeated, within an epoch and across epoch boundaries (real checkpoint files)."""
import os
import sys

import numpy as np
import pytest

from sslax.data import ArraySource, train_dataset
from sslax.train.checkpoint import Checkpointer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_kill_runner import state_at  # noqa: E402

N, BATCH = 40, 16  # an epoch is 2.5 batches, so batches straddle epoch boundaries


def _dataset():
  ids = np.arange(N, dtype=np.uint8)
  return train_dataset(ArraySource(np.tile(ids[:, None, None, None], (1, 2, 2, 1)), ids),
                       global_batch_size=BATCH, seed=3)


def _ids(batch):
  assert np.all(batch["image"] == batch["image"][:, :1, :1, :])
  return [int(i) for i in batch["label"]]


def test_straight_order_is_a_fresh_permutation_each_epoch():
  it = iter(_dataset())
  seen = sum((_ids(next(it)) for _ in range(10)), [])
  epochs = [seen[i:i + N] for i in range(0, len(seen), N)]
  assert all(sorted(e) == list(range(N)) for e in epochs)
  assert len({tuple(e) for e in epochs}) == len(epochs)  # reshuffled every epoch


@pytest.mark.parametrize("stop_after", [2, 3, 5])  # inside epoch 1, across a boundary, on a boundary
def test_restored_iterator_continues_exactly(tmp_path, stop_after):
  it = iter(_dataset())
  straight = sum((_ids(next(it)) for _ in range(10)), [])

  it = iter(_dataset())
  before = sum((_ids(next(it)) for _ in range(stop_after)), [])
  ckpt = Checkpointer(str(tmp_path), save_every=1, async_save=False)
  ckpt.save(state_at(stop_after), it, force=True)
  ckpt.close()
  next(it)  # the interrupted process read ahead; that must not matter

  ckpt = Checkpointer(str(tmp_path), save_every=1)
  state, resumed = ckpt.restore(state_at(0), iter(_dataset()))
  ckpt.close()
  assert int(state.step) == stop_after
  after = sum((_ids(next(resumed)) for _ in range(10 - stop_after)), [])
  assert before + after == straight
