"""The training configuration: one dataclass, loaded from a YAML recipe, overridden with
``--set key=value`` and saved as ``config.yaml`` in every run directory."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..data import DataConfig
from ..errors import CheckpointError, ConfigError, QuadfireError
from ..models import check_model
from ..neurons import NeuronSpec
from .losses import LOSSES
from .optim import OPTIMIZERS
from .typed_yaml import from_dict, merge, parse_overrides, read_yaml, to_dict

AMP = ("none", "bf16", "fp16")
NONFINITE = ("stop", "skip")
MAX_T = 10_000          # time steps; far beyond any recipe, small enough to catch a typo
MAX_EPOCHS = 1_000_000
SEED_LIMIT = 2**32      # numpy's global seed is 32-bit
# What a resumed run may set differently from the run it continues: where it writes and reads,
# how it reports, on which device and with how many loader processes. Everything else shapes
# the weights (model, neuron, data, T, seed) or the data order and learning-rate schedule
# (epochs, batch size, lr, warm-up), so changing it would continue another run than the one
# trained so far (docs/training.md, "Checkpoints and resume").
RESUME_MAY_CHANGE = ("name", "out_dir", "run_name", "progress", "tensorboard", "device",
                     "compile", "measure_batches", "nonfinite", "checkpoint_every", "scratch",
                     "paper_accuracy", "paper_reference", "data.root", "data.download", "data.workers",
                     "data.pin_memory", "data.eval_batch_size", "data.cache_dir")
# `engine.fit`'s resume, besides None and a checkpoint path: the run's own last.pt if there is
# one, else a fresh start; a new run replacing the one in its directory
AUTO, OVERWRITE = "auto", "overwrite"
FLOATS = ("lr", "momentum", "weight_decay", "warmup_epochs", "min_lr", "label_smoothing",
          "tet_lambda", "tet_phi", "grad_clip")


@dataclass
class TrainConfig:
    """Everything a run needs. Times in epochs; learning rates per the whole (global) batch."""

    name: str = "digits"                # recipe name, also the default run-directory name
    # Model (`quadfire.models.create_model(model, neuron=..., T=..., **model_kwargs)`).
    model: str = "convnet"
    neuron: str = "qif"
    neuron_kwargs: dict = field(default_factory=dict)
    model_kwargs: dict = field(default_factory=dict)
    T: int = 4                          # time steps
    # Optimisation.
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9               # SGD only
    weight_decay: float = 0.0           # not applied to BN/norm weights or biases
    warmup_epochs: float = 0.0          # linear warm-up, then cosine to `min_lr`
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    loss: str = "ce"                    # "ce": CE on the time-mean output; "tet": TET loss;
                                        # "mse": MSE of the time-mean output to one-hot
    tet_lambda: float = 0.05            # TET's MSE weight (lambda) ...
    tet_phi: float = 1.0                # ... and target (phi = v_th)
    grad_clip: float = 0.0              # max global grad norm; 0 disables clipping
    amp: str = "none"                   # "bf16" (no scaler) or "fp16" (with a GradScaler)
    compile: bool = False               # torch.compile the model
    sync_bn: bool = False               # convert BatchNorm to SyncBatchNorm under DDP
    # Run bookkeeping.
    seed: int = 0
    device: str = "auto"                # "auto": cuda:LOCAL_RANK if available, else cpu
    out_dir: str = "runs"
    run_name: str = ""                  # empty: `name`-`neuron`-s`seed`
    progress: bool = True               # rank 0: a line per epoch, a bar on a terminal
    tensorboard: bool = True
    # The paper's reported accuracy for this setting (the recipe's `paper_reference`), shown in report.json.
    paper_accuracy: Optional[float] = None
    paper_reference: str = ""
    measure_batches: int = 0            # test batches for the firing-rate report; 0: all
    # A step with a non-finite loss, gradient or BN statistic: "stop" the run with an error
    # (weights and last.pt stay as they were) or "skip" the batch and go on.
    nonfinite: str = "stop"
    # Also write last.pt every this many training steps within an epoch (0: at epoch ends
    # only), so a crash loses at most that many steps; a mid-epoch checkpoint resumes exactly.
    checkpoint_every: int = 1000
    # A run that a later run in its directory may replace without asking (smoke runs, the
    # digits demo; `rundir`).
    scratch: bool = False
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self):
        for name in FLOATS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        paper = self.paper_accuracy
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}, got {self.loss!r}"),
            (self.amp in AMP, f"amp must be one of {AMP}, got {self.amp!r}"),
            (self.nonfinite in NONFINITE,
             f"nonfinite must be one of {NONFINITE}, got {self.nonfinite!r}"),
            (1 <= self.T <= MAX_T, f"T must be in 1..{MAX_T}, got {self.T}"),
            (1 <= self.epochs <= MAX_EPOCHS, f"epochs must be in 1..{MAX_EPOCHS}, got {self.epochs}"),
            (0 <= self.seed < SEED_LIMIT, f"seed must be in 0..{SEED_LIMIT - 1}, got {self.seed}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (0 <= self.tet_lambda <= 1, f"tet_lambda must be in [0, 1], got {self.tet_lambda}"),
            (paper is None or (math.isfinite(paper) and 0 <= paper <= 100),
             f"paper_accuracy must be a percentage in [0, 100] or null, got {paper}"),
            (0 <= self.min_lr <= self.lr, f"min_lr must be in [0, lr={self.lr}], got {self.min_lr}"),
            (0 <= self.warmup_epochs < self.epochs,
             f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.loss != "mse" or self.label_smoothing == 0,
             f"label_smoothing applies to the ce and tet losses; loss=mse needs 0, got "
             f"{self.label_smoothing}"),
            (self.measure_batches >= 0, f"measure_batches must be >= 0, got {self.measure_batches}"),
            (self.checkpoint_every >= 0,
             f"checkpoint_every must be >= 0 steps (0: at epoch ends only), got "
             f"{self.checkpoint_every}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 disables), got {self.grad_clip}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        _check_device(self.device)
        for name in ("out_dir", "name"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")
        self._check_model()

    def _check_model(self) -> None:
        """The model, its options and the neuron's keyword arguments, checked without
        building the network, so a typo fails when the config is read."""
        check_model(self.model, self.model_kwargs)
        try:
            NeuronSpec(self.neuron, self.neuron_kwargs)
        except ConfigError:
            raise
        except QuadfireError as e:
            raise ConfigError(f"neuron_kwargs {self.neuron_kwargs} for neuron "
                              f"{self.neuron!r}: {e}") from None

    @property
    def run_id(self) -> str:
        return self.run_name or f"{self.name}-{self.neuron}-s{self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id


def _check_device(spec: str) -> None:
    """"auto" or a torch device string; whether CUDA is present is checked when a run starts
    (a config written on a GPU machine must still load elsewhere)."""
    if spec == "auto":
        return
    try:
        torch.device(spec)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"device must be 'auto' or a torch device such as 'cpu', 'cuda' or "
                          f"'cuda:1', got {spec!r}") from None


def _legacy(data: dict) -> dict:
    """Configs saved before the run's T was the only T carried a ``data.T`` for event frames;
    it must agree with T and is dropped."""
    section = data.get("data")
    if not (isinstance(section, dict) and "T" in section):
        return data
    section = dict(section)
    frames = section.pop("T")
    if "T" in data and str(data["T"]) != str(frames):
        raise ConfigError(f"data.T={frames!r} disagrees with T={data['T']!r}; the run's T is the "
                          f"only one now (event data is framed into T frames): drop data.T")
    return {**data, "T": data.get("T", frames), "data": section}


def resume_conflicts(run: TrainConfig, given: TrainConfig) -> list[str]:
    """The settings of `given` that a resume of `run` may not change (`RESUME_MAY_CHANGE`),
    each as "key: <run's value> in the run, <given value> given"."""
    def flat(cfg: TrainConfig) -> dict:
        values = to_dict(cfg)
        data = values.pop("data")
        return {**values, **{f"data.{k}": v for k, v in data.items()}}

    old, new = flat(run), flat(given)
    return [f"{key}: {old.get(key)!r} in the run, {new.get(key)!r} given"
            for key in old if key not in RESUME_MAY_CHANGE and old.get(key) != new.get(key)]


def config_from_checkpoint(state: dict, source: str,
                           overrides: list[str] | None = None) -> TrainConfig:
    """The resolved config that checkpoint `state` (read from `source`) carries, with
    ``--set`` style `overrides`: a CheckpointError when it carries none, a ConfigError when
    the saved config itself is not valid."""
    saved = state.get("config") if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{source} holds no run config (it was not written by `quadfire "
                              f"train`); train a new run, or resume it with its recipe: "
                              f"quadfire train RECIPE --resume {source}")
    try:
        run = load_config(saved)
    except ConfigError as e:
        raise ConfigError(f"the run config in {source} is not valid ({e}); start a new run "
                          f"instead") from None
    return load_config(saved, overrides) if overrides else run


def check_resume(state: dict, given: TrainConfig, source: str) -> None:
    """A resumed run continues the run it is: raise ConfigError naming every setting of
    `given` that differs from the config of checkpoint `state` and may not change."""
    run = config_from_checkpoint(state, source)
    conflicts = resume_conflicts(run, given)
    if conflicts:
        raise ConfigError(f"--resume continues the run in {source} with the settings it was "
                          f"trained with, but {'; '.join(conflicts)}; drop these changes, or "
                          f"start a new run (--set run_name=NAME, or --overwrite)")


def load_config(recipe: str | Path | dict | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> TrainConfig:
    """Defaults < recipe (a YAML path or an already-read dict) < `base` < ``--set`` overrides."""
    data = recipe if isinstance(recipe, dict) else read_yaml(recipe) if recipe is not None else {}
    data = merge(_legacy(data), _legacy(base or {}), TrainConfig)
    data = merge(data, _legacy(parse_overrides(overrides or [])), TrainConfig, dotted=True)
    try:
        return from_dict(TrainConfig, data)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # a section's own validation (e.g. DataConfig)
        raise ConfigError(str(e)) from None
