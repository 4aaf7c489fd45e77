import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from sslax.models import MLPHead, resnet


def _num_params(module):
  return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.mark.parametrize("name,cifar_stem,expected", [
    ("resnet18", True, 11_168_832),   # solo-learn's CIFAR ResNet-18 trunk
    ("resnet50", False, 23_508_032),  # torchvision resnet50 without its fc layer
])
def test_parameter_counts_match_torchvision(name, cifar_stem, expected):
  model = nnx.eval_shape(lambda: resnet(name, cifar_stem=cifar_stem, rngs=nnx.Rngs(0)))
  assert _num_params(model) == expected


def test_models_return_output_and_named_features():
  model = resnet("resnet_tiny", in_channels=1, cifar_stem=True, rngs=nnx.Rngs(0))
  out, feats = model(jnp.zeros((2, 16, 16, 1)), train=False)
  assert out.shape == (2, 128)
  assert {"stem", "stage1", "stage2", "stage3", "stage4", "pooled"} <= set(feats)
  assert feats["stage4"].shape == (2, 2, 2, 128)
  head = MLPHead(128, 64, 32, num_layers=3, rngs=nnx.Rngs(0))
  z, hf = head(out, train=True)
  assert z.shape == (2, 32) and hf["hidden"].shape == (2, 64)


def test_unknown_model_name():
  with pytest.raises(ValueError, match="model.name: expected one of"):
    resnet("resnet19", rngs=nnx.Rngs(0))
