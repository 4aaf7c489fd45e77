"""The method protocol: a `Method` base class with a default for every hook, and the registry.

A method is one file under `sslax/methods/` holding a `Method` subclass
registered by name (`@register("simclr")`). It never owns a loop; the train
loop, the pipeline, `sslax plan` and the evaluators call its hooks:

| hook | gives | default |
|---|---|---|
| `inputs` | a `sslax.data.Modality`: record keys, host transform, batch shapes, `validate_batch` | none: required |
| `check_config()` | config checks naming the key, expected and actual value | none |
| `build_model(rngs)` | the NNX model (encoder + heads) | required |
| `init_state(model, key)` | extra state in `TrainState.method_state` | `{}` |
| `ema_schedule(total_steps)` | tau schedule of an EMA target network, or None | None |
| `loss(model, batch, method_state, key, step, target)` | `(loss, aux, method_state)`, pure and jittable | required |
| `refresh_every`, `refresh(state, data, mesh, step)` | host-side work before every `refresh_every`-th step (k-means on features, pseudo-labels); returns the new `TrainState` | 0: never |
| `probe_inputs` | the `Modality` of the labelled probe records (`features` reads them) | `inputs` |
| `features(model, inputs)` | frozen features [B, D] for the probes | `model.encode(inputs[first key])` |
| `train_features(model, inputs, key)` | `features` in training mode (augmentation, batch statistics, dropout), for a head trained through the network | `features` |
| `token_features(model, inputs, key=None)` | per-token features [B, L, D] (token tagging); dropout from `key` | an error |
| `heldout(model, inputs, key)` | `{name: (sum, count)}` for `HeldoutMetrics` | an error |
| `layer_features(model, inputs)` | `{layer name: [B, D]}` frozen features of every layer, for `LayerProbe` | an error |
| `evaluators()` | what the run reports (`sslax.eval`) | `KNN()`, `LinearProbe()` |
| `probe_data()` | the labelled data config the probes read, or None (the pretraining data) | `eval.probe_data` |

Decisions where DESIGN.md is silent, as big_vision and optax would:

- **Lookup by module name, then registry.** `method_class("simclr")` imports
  `sslax.methods.simclr` (as big_vision imports `big_vision.models.{name}`),
  whose `@register("simclr")` adds the class; a dotted name
  (`"mylab.methods.foo"`) imports that module instead, so methods outside
  the package need no edit here. Registering one name twice is an error.
- **`refresh` gets and returns the whole `TrainState`**: it may read
  parameters (to compute features) and writes only `method_state`; the loop
  puts the result back on the state's shardings, so the refreshed state is
  sharded, checkpointed and restored like the rest. It runs before the step
  whose index is a multiple of `refresh_every` (step 0 included), so a run
  resumed at such a step recomputes it from the same parameters: exact.
- **Methods are frozen dataclasses of their config**: hashable, so a jitted
  function may close over one; `__post_init__` runs `check_config`, so a bad
  value fails when the method is made, before any data is read.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, ClassVar

import jax
import ml_collections
from flax import nnx

from sslax.data.modality import Modality
from sslax.eval import KNN, LinearProbe

_REGISTRY: dict[str, type] = {}
# modules of this package that hold shared parts, not a method
_NOT_METHODS = {"base", "two_view", "language", "downstream", "image_text", "masked_image", "spatial_pretext",
               "speech_frames"}


def register(name: str) -> Callable[[type], type]:
  """Class decorator: makes the `Method` subclass findable as `method.name = name`."""

  def add(cls: type) -> type:
    if name in _REGISTRY and _REGISTRY[name] is not cls:
      raise ValueError(f"method {name!r}: already registered by {_REGISTRY[name].__module__}."
                       f"{_REGISTRY[name].__qualname__}")
    cls.name = name
    _REGISTRY[name] = cls
    return cls

  return add


def available_methods() -> list[str]:
  """The method names this package ships (one module each), and any registered from elsewhere.

  Examples:
    >>> {"simclr", "byol", "dino", "bert", "wav2vec2"} <= set(available_methods())
    True
    >>> method_class("simclr").card.loss
    'sslax.losses.nt_xent_loss'
  """
  import sslax.methods as package

  shipped = {m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in _NOT_METHODS}
  return sorted(shipped | set(_REGISTRY))


def method_class(name: str) -> type:
  """The `Method` subclass registered as `name`, importing its module first (see the module
  docstring). Raises ValueError naming `method.name`, the choices and the value."""
  if name not in _REGISTRY and isinstance(name, str) and name:
    module = name if "." in name else f"sslax.methods.{name}"
    try:
      importlib.import_module(module)
    except ModuleNotFoundError as e:
      if e.name is None or not module.startswith(e.name):  # a missing dependency of a real module
        raise
  if name not in _REGISTRY:
    raise ValueError(f"method.name: expected one of {available_methods()} (or a module path whose module "
                     f"registers that name), got {name!r}")
  return _REGISTRY[name]


def make_method(config: ml_collections.ConfigDict) -> "Method":
  """The method named by `config.method.name`, configured (and checked) by `config`."""
  return method_class(config.method.name)(config)


@dataclasses.dataclass(frozen=True)
class MethodCard:
  """What the documentation says about a method, next to its code so that it cannot drift: the
  docs build (`docs/hooks.py`) renders one page per registered method from its card, its class
  docstring, the loss's docstring, the `experiments/` configs that name it and its rows of
  `experiments/RESULTS.md`, and fails when a test, a loss or a row named here does not exist.

  Args:
    family: the row of the index table ("contrastive", "self-distillation", ...).
    paper: the paper, as a Markdown citation with its link.
    objective: the objective in one or two lines (plain text or Markdown math).
    loss: the dotted path of the loss function (e.g. "sslax.losses.nt_xent_loss"), or "" when the
      loss is written in the method's own file.
    reference: the reference implementation the loss or recipe follows.
    tests: "tests/<file>.py::<test>" of the tests that check the loss against its formula or the
      reference, the smoke test first.
    results: ("<heading of a RESULTS.md section, its start>", "<first cell of its rows>", ...):
      the rows of that section's tables that hold the method's figures.
  """

  family: str
  paper: str
  objective: str
  loss: str
  reference: str
  tests: tuple[str, ...]
  results: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Method:
  """Base of every method: subclasses override the hooks they need (module docstring)."""

  config: ml_collections.ConfigDict

  name: ClassVar[str] = ""
  # the documentation's facts about the method (`MethodCard`); the docs build requires one
  card: ClassVar[MethodCard | None] = None

  def __post_init__(self):
    self.check_config()

  def check_config(self) -> None:
    """Method-specific config checks; each failure names the key, the expected and the actual value."""

  @property
  def inputs(self) -> Modality:
    raise NotImplementedError(f"{type(self).__name__}.inputs: a method must name its inputs (a "
                              "sslax.data.Modality: Images, Audio, TokenRows, Labels or a Combined of them)")

  def build_model(self, rngs: nnx.Rngs) -> nnx.Module:
    raise NotImplementedError(f"{type(self).__name__}.build_model")

  @property
  def probe_inputs(self) -> Modality:
    """How the probes read labelled records: `inputs`, unless the method trains on more than the
    probes have (an image-text method's probes read images alone)."""
    return self.inputs

  def init_state(self, model: nnx.Module, key: jax.Array) -> Any:
    return {}

  def ema_schedule(self, total_steps: int) -> Callable | None:
    return None

  def loss(self, model, batch, method_state, key, step, target=None):
    raise NotImplementedError(f"{type(self).__name__}.loss")

  @property
  def refresh_every(self) -> int:
    """`method.refresh_every` steps between `refresh` calls; 0 (the default): never."""
    return int(self.config.method.get("refresh_every", 0) or 0)

  def refresh(self, state, data, mesh, step: int):
    """Host-side work before step `step` (a multiple of `refresh_every`): returns the `TrainState`
    with a new `method_state` (same structure, shapes and dtypes). `data` is the run's
    `sslax.eval.EvalData` (`data.train`: the pretraining split)."""
    return state

  def features(self, model: nnx.Module, inputs: dict[str, jax.Array]) -> jax.Array:
    """Frozen evaluation-mode features [B, D]: the encoder's pooled output of the first input."""
    return model.encode(inputs[self.inputs.keys[0]], train=False)

  def train_features(self, model: nnx.Module, inputs: dict[str, jax.Array], key: jax.Array) -> jax.Array:
    """`features` as the network trains: the method's augmentation, batch statistics and dropout
    drawn from `key` (fine-tuning with `finetune.train_mode`). Default: `features` unchanged."""
    return self.features(model, inputs)

  def token_features(self, model: nnx.Module, inputs: dict[str, jax.Array], key=None) -> jax.Array:
    """Per-token features [B, L, D] for token tagging (dropout from `key` when given); only token
    models have them."""
    raise ValueError(f"method.name: {self.name!r} has no per-token features (expected a token model such as "
                     "'bert' or 'gpt')")

  def layer_features(self, model: nnx.Module, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """{layer name: [B, D]} frozen, evaluation-mode features of each layer or stage, first to last,
    for `sslax.eval.layer_probe.LayerProbe`."""
    raise NotImplementedError(f"{type(self).__name__}.layer_features (listed LayerProbe in evaluators())")

  def heldout(self, model: nnx.Module, inputs: dict[str, jax.Array], key: jax.Array) -> dict:
    """{name: (sum, count)} of the objective on held-out rows, for `sslax.eval.HeldoutMetrics`."""
    raise NotImplementedError(f"{type(self).__name__}.heldout (listed HeldoutMetrics in evaluators())")

  def evaluators(self) -> tuple:
    """What the run reports, in order; each a small object from `sslax.eval`."""
    return (KNN(), LinearProbe())

  def probe_data(self) -> ml_collections.ConfigDict | None:
    """The data config of the labelled probe splits (`eval.probe_data`), or None: the pretraining
    data's own train and eval splits (when they carry labels)."""
    probe = self.config.eval.get("probe_data")
    return ml_collections.ConfigDict(probe.to_dict()) if probe else None

  def validate_batch(self, batch, num_devices: int) -> None:
    """Raises ValueError for a host batch the method cannot take, before anything is compiled."""
    self.inputs.validate_batch(batch, num_devices)
