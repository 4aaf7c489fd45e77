"""MetricsWriter: metrics.jsonl and TensorBoard scalars, without importing PyTorch into the run."""
import os
import subprocess
import sys

_CHILD = """
import glob, sys
from sslax.train.metrics import MetricsWriter, read_metrics
w = MetricsWriter(sys.argv[1])
w.write(3, {"loss": 1.5})
w.close()
assert "torch" not in sys.modules, "tensorboardX imported torch"
(record,) = read_metrics(sys.argv[1])
assert record == {"step": 3, "time": record["time"], "loss": 1.5}
assert glob.glob(sys.argv[1] + "/tensorboard/events.out.tfevents.*")
import torch  # the process can still import it after
print("ok", torch.__name__)
"""


def test_tensorboard_writer_does_not_import_torch(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path)], capture_output=True, text=True, env=env, check=False,
                       timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "ok torch" in out.stdout
