"""Settings the image-text configs share (`clip_flickr8k.py`, `siglip_flickr8k.py`): Flickr8k data,
the two towers, the LiT variants, the budgets.

Variants (the `arg` of `get_config`):
  smoke       a tiny ResNet and a 1-layer text tower; the tests point data.* at a generated folder.
  cpu         the 753 Flickr8k train images of ../shared/data/image_text/flickr8k at 32x32 on 2 CPU
              cores, all 5 captions each (a WordPiece vocabulary of 4,096 trained on them), both
              towers from scratch: the 4-stage `resnet_tiny` of width 16 that the CIFAR-10 table
              uses, and a 4-layer bidirectional text tower of width 192 (the architecture of
              `bert_text.py:cpu`, so the LiT variants compare like with like), mean-pooled;
              embed_dim 128, batch 128, 400 steps (68 epochs), AdamW lr 1e-3. 32x32 is CIFAR-10's size
              (zero-shot, probes and the SimCLR tower all see the size they were made at) and a
              quarter of 64x64's cost.
  lit         both towers started from sslax's own runs and locked (only the projections and the
              scale train): the image tower from `simclr_cifar10.py:cpu` (runs/lit/simclr), the text
              tower and its tokenizer from `bert_text.py:cpu` (runs/lit/bert_sst2; the run keeps its
              tokenizer in the data cache, and `experiments/run_image_text.sh` copies it into the
              run folder as tokenizer.json).
  lit_image   the SimCLR image tower locked, the text tower trained from scratch.
  full        CLIP ViT-B/16 at 224 with a 12-layer causal text tower of width 512 pooled at the
              end-of-text token, batch 32,768, on TFDS `coco_captions` (Radford et al. 2021, Table 20:
              AdamW (0.9, 0.98), lr 5e-4, weight decay 0.2, 2,000 warm-up steps, cosine).
Evaluated on the 125 Flickr8k test images (625 captions) for retrieval, on CIFAR-10's test split
for zero-shot, and by kNN / linear probe of the image tower on CIFAR-10.
"""
import ml_collections

from sslax.config import base_config

FLICKR = "../shared/data/image_text/flickr8k"
CIFAR = {"train": "../shared/data/cifar10/train.tar.gz", "test": "../shared/data/cifar10/test.tar.gz"}
WORDPIECE_IDS = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
BPE_IDS = {"eos": 0, "pad": 1}
# the runs the LiT variants start from (`sslax train --config experiments/simclr_cifar10.py:cpu
# --workdir runs/lit/simclr`, and bert_text.py:cpu into runs/lit/bert_sst2)
SIMCLR_RUN, BERT_RUN = "runs/lit/simclr", "runs/lit/bert_sst2"
VARIANTS = ("cpu", "full", "lit", "lit_image", "smoke")
# Flickr-style prompts ("A dog runs ...") beside CLIP's "a photo of a {}."
PROMPTS = ("a photo of a {}.", "a {} .", "a picture of a {}.", "a {} in the picture.", "the {} .",
           "a close up of a {}.", "a small {}.", "a big {}.")


def image_text_config(arg: str | None, method: str) -> ml_collections.ConfigDict:
  arg = arg or "full"
  if arg not in VARIANTS:
    raise ValueError(f"config arg: expected one of {list(VARIANTS)}, got {arg!r}")
  c = base_config()
  del c["projector"]
  c.method = ml_collections.ConfigDict({"name": method, "embed_dim": 128, "lock_image": False, "lock_text": False,
                                        "max_scale": 100.0,
                                        "loss_block_size": ml_collections.FieldReference(None, field_type=int)})
  c.model.name, c.model.width, c.model.cifar_stem = "resnet_tiny", 16, True
  c.text = ml_collections.ConfigDict({"kind": "bert", "pooling": "mean", "vocab_size": 4096, "max_len": 128,
                                      "dim": 192, "depth": 4, "num_heads": 6, "mlp_dim": 768, "dropout": 0.1})
  c.data = ml_collections.ConfigDict({
      "source": "image_captions", "name": "", "images": f"{FLICKR}/images", "captions": f"{FLICKR}/captions.txt",
      "paths": {s: f"{FLICKR}/splits/Flickr_8k.{s}Images.txt" for s in ("train", "dev", "test")},
      "train_split": "train", "eval_split": "test", "data_dir": ml_collections.FieldReference(None, field_type=str),
      "image_size": (32, 32), "tokenizer": "wordpiece", "vocab_size": 4096, "special_ids": dict(WORDPIECE_IDS),
      "framing": "cls_sep", "caption_len": 32, "max_captions": 5, "text_format": "lines",
      "text_column": ml_collections.FieldReference(None, field_type=str), "on_bad_example": "error"})
  # one random resized crop and flip per image; no colour jitter or grayscale (captions name colours)
  c.augment.crop_size, c.augment.crop_scale = (32, 32), (0.5, 1.0)
  c.augment.jitter_prob, c.augment.grayscale_prob = 0.0, 0.0
  c.optim.update({"name": "adamw", "lr": 1e-3, "scale_lr_with_batch": False, "weight_decay": 0.1, "b1": 0.9,
                  "b2": 0.98, "warmup_steps": 50, "grad_clip_norm": 1.0})
  c.optim.freeze = ()
  c.train.init_from = ()
  c.monitor.collapse_std_ratio, c.monitor.collapse_rank = 0.0, 0.0
  c.eval.probe_data = {"source": "image_folder", "paths": dict(CIFAR), "train_split": "train", "eval_split": "test",
                       "on_bad_example": "error"}
  c.eval.max_train, c.eval.knn_k = 10000, 20
  c.eval.zeroshot = {"data": dict(c.eval.probe_data), "prompt": "a photo of a {}.", "prompts": PROMPTS,
                     "class_names": (), "max_test": 0}
  if arg == "full":
    c.model.name, c.model.image_size, c.model.patch_size, c.model.in_channels = "vit_base", 224, 16, 3
    c.text.update({"kind": "gpt", "pooling": "last", "vocab_size": 49408, "max_len": 77, "dim": 512, "depth": 12,
                   "num_heads": 8, "mlp_dim": 2048, "dropout": 0.0})
    c.method.embed_dim = 512
    c.data.update({"source": "tfds", "name": "coco_captions", "paths": {}, "image_size": (224, 224),
                   "tokenizer": "bpe", "vocab_size": 49408, "special_ids": dict(BPE_IDS), "framing": "eos",
                   "caption_len": 77, "eval_split": "val"})
    c.augment.crop_size, c.augment.crop_scale = (224, 224), (0.9, 1.0)
    c.augment.mean, c.augment.std = (0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758)
    c.optim.update({"lr": 5e-4, "weight_decay": 0.2, "warmup_steps": 2000})
    c.train.batch_size, c.train.num_epochs, c.train.log_every, c.train.checkpoint_every = 32768, 32, 100, 1000
    c.eval.probe_data.image_size = c.eval.zeroshot.data.image_size = (224, 224)
  elif arg == "smoke":
    c.model.name, c.model.width = "resnet_tiny", 8
    c.text.update({"vocab_size": 200, "max_len": 16, "dim": 16, "depth": 1, "num_heads": 2, "mlp_dim": 32,
                   "dropout": 0.0})
    c.method.embed_dim = 16
    c.data.update({"image_size": (16, 16), "vocab_size": 200, "caption_len": 16, "max_captions": 3})
    c.augment.crop_size = (16, 16)
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 16, 3, 1, 3
    c.eval.probe_data, c.eval.zeroshot.data = {}, {}
    c.eval.knn_k, c.eval.linear_probe = 5, False
  else:  # cpu, lit, lit_image
    c.train.batch_size, c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 128, 400, 50, 200
    if arg in ("lit", "lit_image"):
      c.train.init_from = (("image_tower", SIMCLR_RUN, "encoder"),)
      c.method.lock_image, c.optim.freeze = True, ("image_tower",)
    if arg == "lit":
      c.train.init_from = (*c.train.init_from, ("text_tower", BERT_RUN, ""))
      c.data.tokenizer = f"{BERT_RUN}/tokenizer.json"
      c.method.lock_text, c.optim.freeze = True, ("image_tower", "text_tower")
  return c
