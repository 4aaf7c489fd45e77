import os
import re

import pytest

from sslax.config import apply_overrides, base_config, load_config, validate_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_METHODS = ("simclr", "byol", "simsiam", "moco", "dino", "vicreg", "barlow_twins", "rotation")


def _experiment_specs() -> list[str]:
  """`<file>:<variant>` for every config under experiments/ (a file with `get_config`) and every
  variant its `VARIANTS` names; a config without `VARIANTS` fails collection."""
  import importlib.util
  import sys

  folder = os.path.join(ROOT, "experiments")
  sys.path.insert(0, folder)  # configs import their common modules, as load_config lets them
  try:
    specs = []
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name)
      if not name.endswith(".py") or "def get_config(" not in open(path).read():
        continue
      spec = importlib.util.spec_from_file_location(f"_experiment_{name[:-3]}", path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      specs += [f"{name}:{variant}" for variant in module.VARIANTS]
    return specs
  finally:
    sys.path.remove(folder)


_SPECS = _experiment_specs()


def test_every_experiment_config_is_listed():
  names = {spec.split(":")[0] for spec in _SPECS}
  assert {f"{m}_cifar10.py" for m in _METHODS} | {"bert_text.py", "gpt_text.py", "wav2vec2_fsdd.py", "clip_flickr8k.py",
                                                  "siglip_flickr8k.py"} <= names
  for name in names - {"simclr_digits.py"}:  # the quickstart's config: default and smoke
    assert {f"{name}:{v}" for v in ("smoke", "cpu", "full")} <= set(_SPECS), name


@pytest.mark.parametrize("spec", _SPECS)
def test_experiment_configs_load_and_validate(spec):
  from sslax.methods import make_method

  config = load_config(os.path.join(ROOT, "experiments", spec))
  validate_config(config)
  assert make_method(config).name == config.method.name
  assert config.is_locked


def test_cpu_budget_is_shared_by_every_method():
  budgets = {(c.model.name, c.model.width, c.train.batch_size, c.train.num_steps, c.seed)
             for c in (load_config(os.path.join(ROOT, "experiments", f"{m}_cifar10.py:cpu")) for m in _METHODS)}
  assert budgets == {("resnet_tiny", 16, 256, 250, 0)}
  vit = {(c.model.name, c.model.patch_size, c.train.batch_size, c.train.num_steps, c.seed)
         for c in (load_config(os.path.join(ROOT, "experiments", f"{m}_cifar10.py:cpu")) for m in ("mae", "simmim"))}
  assert vit == {("vit_tiny", 4, 256, 250, 0)}  # the ViT rows share theirs


def test_method_config_errors_name_key_expected_and_actual():
  from sslax.methods import make_method

  config = base_config()
  config.method.temperature = 0.0
  with pytest.raises(ValueError, match="method.temperature: expected a positive number, got 0.0"):
    make_method(config)
  config = base_config()
  config.method.loss_block_size = -4
  with pytest.raises(ValueError, match=r"method.loss_block_size: expected None \(dense\) or a positive int .*got -4"):
    make_method(config)


def test_full_recipe_is_solo_learns():
  c = load_config(os.path.join(ROOT, "experiments", "simclr_cifar10.py:full"))
  assert (c.model.name, c.train.batch_size, c.train.num_epochs, c.optim.name, c.method.temperature) == \
      ("resnet18", 256, 1000, "lars", 0.2)


def test_unknown_variant_and_key_fail_naming_them():
  with pytest.raises(ValueError, match="config arg"):
    load_config(os.path.join(ROOT, "experiments", "simclr_cifar10.py:huge"))
  config = load_config(os.path.join(ROOT, "experiments", "simclr_cifar10.py:smoke"))
  with pytest.raises(ValueError, match="train.batch_sise: unknown config key"):
    apply_overrides(config, ["train.batch_sise=3"])
  with pytest.raises(ValueError, match="trian.batch_size: unknown config key"):
    apply_overrides(config, ["trian.batch_size=3"])
  with pytest.raises(ValueError, match="train.batch_size: expected a value of type int, got 2.5"):
    apply_overrides(config, ["train.batch_size=2.5"])
  apply_overrides(config, ["train.batch_size=64", "optim.name='sgd'"])
  assert config.train.batch_size == 64 and config.optim.name == "sgd"


@pytest.mark.parametrize("key,value,expected", [
    ("train.batch_size", 0, "train.batch_size: expected a positive integer, got 0"),
    ("optim.lr", -0.1, "optim.lr: expected a positive number, got -0.1"),
    ("augment.flip_prob", 1.5, "augment.flip_prob: expected a probability in [0, 1], got 1.5"),
    ("augment.crop_scale", (0.5, 0.2), "augment.crop_scale: expected a pair"),
    ("optim.momentum", 1.0, r"optim.momentum: expected a number in \[0, 1\), got 1.0"),
])
def test_out_of_range_values_fail_naming_key_expected_and_actual(key, value, expected):
  config = base_config()
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=expected.replace("[", r"\[").replace("]", r"\]")
                     if "\\" not in expected else expected):
    validate_config(config)


def test_mean_std_must_match_channels():
  config = base_config()
  config.model.in_channels = 1
  with pytest.raises(ValueError, match="augment.mean / augment.std: expected 1 values"):
    validate_config(config)


def test_bad_enum_values_fail_when_used():
  from sslax.methods import make_method
  from sslax.optim import make_optimizer

  config = base_config()
  config.method.name = "simclrr"
  with pytest.raises(ValueError, match="method.name: expected one of"):
    make_method(config)
  config = base_config()
  config.optim.name = "adam"
  with pytest.raises(ValueError, match="optim.name: expected one of"):
    make_optimizer(config.optim, 10, 256)


@pytest.mark.parametrize("override,message", [
    ("optim.lr=1e999", "optim.lr: expected a finite number, got inf"),
    ("augment.mean=(0.5, 1e999, 0.4)", "augment.mean[1]: expected a finite number, got inf"),
    ("method.temperature=-1e999", "method.temperature: expected a finite number, got -inf"),
])
def test_a_non_finite_value_anywhere_is_refused_naming_its_key(override, message):
  config = apply_overrides(load_config(os.path.join(ROOT, "experiments", "simclr_cifar10.py:cpu")), [override])
  with pytest.raises(ValueError, match=re.escape(message)):
    validate_config(config)
