import jax
import numpy as np
import jax.numpy as jnp
import pytest
from flax import nnx

from sslax.models import DINOHead, MLPHead, resnet, vit


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


def test_vit_small_parameter_count_matches_timm():
  # timm's vit_small_patch16_224 without its classifier: 21,665,664 parameters.
  model = nnx.eval_shape(lambda: vit("vit_small", image_size=224, patch_size=16, rngs=nnx.Rngs(0)))
  assert _num_params(model) == 21_665_664


def test_vit_returns_class_token_and_takes_other_resolutions():
  model = vit("vit_tiny", image_size=32, patch_size=4, depth=2, rngs=nnx.Rngs(0))
  forward = nnx.jit(lambda m, x: m(x))  # one program per resolution, not one per op
  cls, feats = forward(model, jnp.ones((2, 32, 32, 3)))
  assert cls.shape == (2, 192) and feats["tokens"].shape == (2, 65, 192)
  local, feats = forward(model, jnp.ones((2, 16, 16, 3)))  # DINO's local crops: position embeddings resized
  assert local.shape == (2, 192) and feats["tokens"].shape == (2, 17, 192)
  with pytest.raises(ValueError, match="model.patch_size: expected a divisor"):
    vit("vit_tiny", image_size=32, patch_size=5, rngs=nnx.Rngs(0))


def test_dino_head_normalizes_prototypes_and_can_freeze_them():
  head = DINOHead(16, 32, 8, 20, norm_last_layer=True, rngs=nnx.Rngs(0))
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  logits, feats = nnx.jit(lambda h, x: h(x))(head, x)
  assert logits.shape == (4, 20)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(feats["embedding"]), axis=1), 1.0, rtol=1e-5)
  assert float(jnp.abs(logits).max()) <= 1.0 + 1e-5  # unit embedding . unit prototype
  graphdef, params = nnx.split(head, nnx.Param)

  def loss(p, freeze):
    return jnp.sum(nnx.merge(graphdef, p)(x, freeze_prototypes=freeze)[0] ** 2)

  grad = jax.jit(jax.grad(loss), static_argnums=1)
  assert float(jnp.abs(grad(params, True)["prototypes"][...]).max()) == 0.0
  assert float(jnp.abs(grad(params, False)["prototypes"][...]).max()) > 0.0
  assert float(jnp.abs(grad(params, True)["linears"][0]["kernel"][...]).max()) > 0.0
