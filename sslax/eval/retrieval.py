"""Image-text evaluation: retrieval recall@k both ways on held-out captioned images, and zero-shot
classification from class-name prompts (Radford et al. 2021, Sections 3.1 and 3.1.4).

The method gives two hooks: `image_text_embeddings(model, inputs)` -> [B, 1 + K, E]
(the image's embedding, then its K caption slots' embeddings, all l2-normalized) for records of
its `inputs`, and `prompt_embeddings(model, ids, lengths)` -> [P, E] for tokenized prompts;
`tokenize(texts)` gives the (ids, lengths) of any strings with the run's tokenizer.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import grain
import numpy as np

from sslax.eval.features import extract_features_and_labels, make_feature_fn

# CLIP's ImageNet prompt ensemble, the subset its notebook found best (Radford et al. 2021, A.2)
PROMPTS = ("itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
           "a {} in a video game.", "art of the {}.", "a photo of the small {}.")


def retrieval_recall(sim: np.ndarray, text_image: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
  """Recall@k both ways from similarities `sim` [I, T] of I images and T texts, text t
  describing image `text_image[t]`.

  image->text: an image counts at k when any of its texts ranks in its top k texts;
  text->image: a text counts when its image ranks in its top k images (Karpathy & Fei-Fei's
  protocol, as open_clip's retrieval evaluation). Ties rank against the item (pessimistic).

  Returns {"i2t_r@k", "t2i_r@k"} for each k.
  """
  sim = np.asarray(sim, np.float64)
  text_image = np.asarray(text_image)
  n_img, n_txt = sim.shape
  if text_image.shape != (n_txt,):
    raise ValueError(f"text_image: expected [{n_txt}] (one image per text), got {text_image.shape}")
  own = text_image[None, :] == np.arange(n_img)[:, None]  # [I, T]
  # rank of text t for image i = texts scoring at least as high, minus one (itself)
  best_own = np.where(own, sim, -np.inf).max(axis=1)  # each image's best own text
  i2t_rank = np.sum(np.where(own, -np.inf, sim) >= best_own[:, None], axis=1)
  pos = sim[text_image, np.arange(n_txt)]  # [T] each text's score with its own image
  t2i_rank = np.sum(sim >= pos[None, :], axis=0) - 1
  out = {}
  for k in ks:
    out[f"i2t_r@{k}"] = float(np.mean(i2t_rank < k))
    out[f"t2i_r@{k}"] = float(np.mean(t2i_rank < k))
  return out


def heldout_embeddings(run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(image embeddings [I, E], caption embeddings [T, E], image of each caption [T]) of the run's
  held-out captioned images, through `method.image_text_embeddings`."""
  method = run.method
  fn = make_feature_fn(method, run.mesh, features=method.image_text_embeddings)
  out, lengths = extract_features_and_labels(method, run.state, run.data.heldout, run.mesh,
                                             label_keys=("caption_lengths",), batch_size=run.config.eval.batch_size,
                                             transform=method.inputs.transform(), feature_fn=fn)
  lengths = lengths["caption_lengths"]
  images, captions = out[:, 0], out[:, 1:]
  has = lengths > 0
  return images, captions[has], np.nonzero(has)[0]


@dataclasses.dataclass(frozen=True)
class Retrieval:
  """Evaluator: recall@1/5/10 image->text and text->image on the held-out captioned images
  (every caption of each), plus their mean ("retrieval_mean")."""
  monitor: bool = True

  def __call__(self, run) -> dict[str, float]:
    if run.data.heldout is None:
      return {}
    images, captions, text_image = heldout_embeddings(run)
    out = retrieval_recall(images @ captions.T, text_image)
    out["retrieval_mean"] = float(np.mean(list(out.values())))
    return out


def embed_texts(method, state, mesh, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
  """[len(texts), E] l2-normalized text embeddings of any strings, tokenized with the run's tokenizer."""
  ids, lengths = method.tokenize(list(texts))
  fn = make_feature_fn(method, mesh, features=lambda model, inputs: method.prompt_embeddings(
      model, inputs["ids"], inputs["lengths"]))
  rows = [{"ids": i, "lengths": n} for i, n in zip(ids, lengths)]
  out, _ = extract_features_and_labels(method, state, rows, mesh, label_keys=(), batch_size=batch_size,
                                       transform=dict, feature_fn=fn, keys=("ids", "lengths"))
  return out


def class_text_embeddings(method, state, mesh, class_names: Sequence[str], prompts: Sequence[str]) -> np.ndarray:
  """[C, E]: per class, the mean of its prompts' normalized embeddings, renormalized (CLIP's
  prompt ensembling in embedding space)."""
  texts = [p.format(name) for name in class_names for p in prompts]
  emb = embed_texts(method, state, mesh, texts).reshape(len(class_names), len(prompts), -1).mean(axis=1)
  return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def source_class_names(source) -> list[str] | None:
  """The label names of a TFDS-backed source (an image folder's class folders, CIFAR-10's classes)."""
  info = getattr(source, "dataset_info", None)
  if info is None and hasattr(source, "source"):
    return source_class_names(source.source)
  try:
    return list(info.features["label"].names)
  except (AttributeError, KeyError, TypeError):
    return None


@dataclasses.dataclass(frozen=True)
class ZeroShot:
  """Evaluator: zero-shot top-1 on labelled images (`eval.zeroshot.data`, e.g. CIFAR-10 test) from
  class-name prompts, with one prompt (`eval.zeroshot.prompt`, "zeroshot_top1") and with the
  ensemble `eval.zeroshot.prompts` ("zeroshot_ensemble_top1"); "zeroshot_chance" beside them.
  Class names from `eval.zeroshot.class_names`, else the dataset's label names ('_' read as ' ')."""
  monitor: bool = False

  def __call__(self, run) -> dict[str, float]:
    zs = run.config.eval.get("zeroshot")
    if not zs or not zs.get("data"):
      return {}
    from sslax.data import get_source

    method = run.method
    source = get_source(zs.data, zs.data.eval_split)
    names = list(zs.get("class_names") or ()) or source_class_names(source)
    if not names:
      raise ValueError("eval.zeroshot.class_names: expected the class names (the dataset has no label names), "
                       "got none")
    names = [n.replace("_", " ") for n in names]
    if zs.get("max_test") and len(source) > zs.max_test:
      source = grain.MapDataset.source(source)[: int(zs.max_test)]
    probe = method.probe_inputs
    fn = make_feature_fn(method, run.mesh, features=method.image_embeddings)
    images, labels = extract_features_and_labels(method, run.state, source, run.mesh, keys=probe.keys,
                                                 batch_size=run.config.eval.batch_size,
                                                 transform=probe.transform(("label",)), feature_fn=fn)
    labels = labels["label"]
    out = {"zeroshot_chance": 1.0 / len(names)}
    for key, prompts in (("zeroshot_top1", (zs.get("prompt", "a photo of a {}."),)),
                         ("zeroshot_ensemble_top1", tuple(zs.get("prompts") or PROMPTS))):
      classes = class_text_embeddings(method, run.state, run.mesh, names, prompts)
      out[key] = float(np.mean(np.argmax(images @ classes.T, axis=1) == labels))
    return out
