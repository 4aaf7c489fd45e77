"""XLNet permutation-LM pretraining (Yang et al. 2019).

Variants (the `arg` of `get_config`):
  smoke  a 1-layer XLNet of width 32 on a generated text file (the tests), 3 steps.
  cpu    `gpt_text.py:cpu`'s data exactly (tinyshakespeare, the byte-level BPE of 2,048 tokens
         trained on its first 90%, rows of 128 tokens, the last 10% held out), so that the held-out
         left-to-right perplexity (`sslax.methods.xlnet`) compares with GPT's; a 4-layer XLNet of
         width 192 (6 heads, dropout 0.1), K = 6 (1/6 of the tokens predicted, spans of at most
         5), batch 32, AdamW lr 1e-3, 100 warm-up steps, cosine decay to 10%. Add WikiText-2 valid
         to the training text with data.paths.train (its perplexity is then on more text than GPT's).
  full   XLNet-base's shape (12 layers of 768, 12 heads, 3,072 MLP, rows of 512, K = 6) on TFDS
         `wikipedia/20230601.en`, the GPT-2 vocabulary, AdamW lr 4e-4, batch 256 (the paper's
         BooksCorpus + Wikipedia recipe on what TFDS has).
"""
import gpt_text

VARIANTS = gpt_text.VARIANTS


def get_config(arg: str | None = None):
  c = gpt_text.get_config(arg)
  c.unlock()
  c.method = {"name": "xlnet", "plm_k": 6.0, "max_span": 5}
  c.model.name = "xlnet"
  c.model.dropout = 0.0 if arg == "smoke" else 0.1
  if (arg or "full") == "full":
    c.data.seq_len, c.model.max_len, c.optim.lr, c.train.batch_size = 512, 512, 4e-4, 256
  c.eval.pooling = "mean"
  c.lock()
  return c
