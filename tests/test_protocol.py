"""The method protocol: lookup by name, hooks with defaults, refresh, evaluators, modalities."""
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import digits_smoke_config
from sslax.data import Audio, Combined, Images, Labels, TokenRows
from sslax.eval import extract_features_and_labels
from sslax.methods import Method, available_methods, make_method, method_class, register
from sslax.methods.simclr import SimCLR
from sslax.train.loop import train


def test_every_shipped_method_is_found_by_its_module_name():
  names = available_methods()
  assert {"simclr", "byol", "simsiam", "moco", "dino", "vicreg", "barlow_twins", "rotation", "wav2vec2", "bert",
          "gpt"} <= set(names)
  for name in names:
    cls = method_class(name)
    assert issubclass(cls, Method) and cls.name == name
    if cls.__module__.startswith("sslax."):  # not the ones tests register
      assert cls.__module__ == f"sslax.methods.{name}"


def test_an_unknown_name_is_refused_naming_the_choices():
  with pytest.raises(ValueError, match=r"method.name: expected one of \[.*'rotation'.*\].*got 'simclrr'"):
    method_class("simclrr")


def test_a_method_outside_the_package_is_found_by_its_module_path(tmp_path, monkeypatch):
  (tmp_path / "toylab").mkdir()
  (tmp_path / "toylab" / "__init__.py").write_text("")
  (tmp_path / "toylab" / "toy.py").write_text(
      "from sslax.methods import register\nfrom sslax.methods.simclr import SimCLR\n\n\n"
      "@register('toylab.toy')\nclass Toy(SimCLR):\n  pass\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  config = digits_smoke_config()
  config.method.name = "toylab.toy"
  method = make_method(config)
  assert type(method).__name__ == "Toy" and method.name == "toylab.toy"
  sys.modules.pop("toylab.toy", None)


def test_one_name_cannot_be_registered_twice():
  with pytest.raises(ValueError, match="method 'simclr': already registered by sslax.methods.simclr.SimCLR"):
    register("simclr")(type("Other", (SimCLR,), {}))


def test_a_method_must_name_its_inputs():
  class NoInputs(Method):
    pass

  with pytest.raises(NotImplementedError, match="NoInputs.inputs: a method must name its inputs"):
    NoInputs(digits_smoke_config()).validate_batch({}, 8)


@dataclasses.dataclass(frozen=True)
class ConstantEvaluator:
  monitor: bool = False

  def __call__(self, run):
    return {"toy/num_probe_train": float(len(run.data.probe_train))}


@register("refresh_probe")
class RefreshProbe(SimCLR):
  """SimCLR whose refresh stores the mean frozen feature of the train split and a call count:
  host-side work that reads the parameters, as k-means pseudo-labels would."""

  @property
  def refresh_every(self):
    return 2

  def init_state(self, model, key):
    return {"calls": jnp.zeros((), jnp.int32), "steps": jnp.full((4,), -1, jnp.int32),
            "mean": jnp.zeros((model.encoder.num_features,), jnp.float32)}

  def refresh(self, state, data, mesh, step):
    x, _ = extract_features_and_labels(self, state, data.train, mesh, label_keys=())
    ms = jax.device_get(state.method_state)
    calls = int(ms["calls"])
    steps = np.asarray(ms["steps"]).copy()
    steps[calls] = step
    return state.replace(method_state={"calls": jnp.asarray(calls + 1, jnp.int32), "steps": jnp.asarray(steps),
                                       "mean": jnp.asarray(x.mean(0))})

  def evaluators(self):
    return (*super().evaluators(), ConstantEvaluator())


def test_refresh_runs_before_every_refresh_every_th_step_and_resumes_exactly(tmp_path):
  config = digits_smoke_config(**{"train.checkpoint_every": 2})
  config.method.name = "refresh_probe"
  straight = train(config, str(tmp_path / "straight"), progress=False)
  ms = jax.device_get(straight.state.method_state)
  # 6 steps: refreshed before steps 0, 2 and 4, the last from the parameters after step 4
  assert int(ms["calls"]) == 3 and list(ms["steps"]) == [0, 2, 4, -1]
  assert np.abs(ms["mean"]).sum() > 0
  assert straight.report["toy/num_probe_train"] == 1257.0  # the method's own evaluator reports
  assert {"knn_top1", "linear_top1"} <= set(straight.report)
  # stopped with step 2 committed: the resumed run refreshes before step 2 again, from the same
  # parameters, and ends where the straight run did
  assert train(config, str(tmp_path / "resumed"), stop_at=2, progress=False) is None
  resumed = train(config, str(tmp_path / "resumed"), progress=False)
  for a, b in zip(jax.tree.leaves(jax.device_get(straight.state)), jax.tree.leaves(jax.device_get(resumed.state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_refresh_that_changes_the_method_state_shape_is_refused(tmp_path):
  class Bad(RefreshProbe):
    def refresh(self, state, data, mesh, step):
      return state.replace(method_state={**state.method_state, "mean": jnp.zeros((3,))})

  from sslax.train.loop import _refresh

  config = digits_smoke_config()
  method = Bad(config)
  from sslax.train.state import build_optimizer, create_train_state

  state = create_train_state(method, build_optimizer(method, config, 6), 0)
  with pytest.raises(ValueError, match=r"method.refresh: expected a method_state like .*'mean': \(\(64,\).*got .*'mean': \(\(3,\)"):
    _refresh(method, state, None, None, 0, None)


def test_modalities_transform_keys_and_labels():
  record = {"image": np.zeros((6, 6, 1), np.uint8), "label": np.int64(3), "caption": np.arange(4)}
  images = Images(channels=1, image_size=(4, 4))
  out = images.transform(("label",))(record)
  assert set(out) == {"image", "label"} and out["image"].shape == (4, 4, 1) and out["label"].dtype == np.int32
  assert set(images.transform()(record)) == {"image"}  # training batches: the method's keys only
  with pytest.raises(ValueError, match=r"data: expected records with a 'speaker' field, got fields \['caption'"):
    images.transform(("speaker",))(record)
  both = Combined((images, Labels("caption", shape=(4,))))
  assert both.keys == ("image", "caption")
  assert {k: v.shape for k, v in both.batch_spec(8).items()} == {"image": (8, 4, 4, 1), "caption": (8, 4)}
  with pytest.raises(ValueError, match="inputs: key 'image' is read by both Images and Images"):
    Combined((images, images))
  with pytest.raises(ValueError, match=r"batch.caption: expected rank 2 \[B, L\], got rank 1"):
    both.validate_batch({"image": np.zeros((8, 4, 4, 1), np.uint8), "caption": np.zeros(8, np.int32)}, 8)
  with pytest.raises(ValueError, match=r"data.image_size: expected \(H, W\) to plan a run on 'imagenet2012'"):
    Images(channels=3, dataset="imagenet2012").batch_spec(8)
  audio = Audio(max_samples=6, record_keys={"audio": "speech", "label": "speaker_id"})
  out = audio.transform(("label", "speaker"))({"speech": np.arange(4, dtype=np.int16), "speaker_id": 7})
  assert out["length"] == 4 and out["audio"].shape == (6,) and out["label"] == 7 and out["speaker"] == 0
  rows = TokenRows(seq_len=8, vocab_size=10, max_len=8)
  assert not rows.labelled and rows.tokens_per_example() == 8
  with pytest.raises(ValueError, match=r"batch.ids: expected token ids in \[0, model.vocab_size=10\)"):
    rows.validate_batch({k: np.full((8, 8), 12, np.int32) for k in rows.keys}, 8)
