"""The training configuration: one dataclass, loaded from a YAML recipe, overridden with
``--set key=value`` and saved as ``config.yaml`` in every run directory."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..data import DataConfig
from ..errors import ConfigError
from .losses import LOSSES
from .optim import OPTIMIZERS
from .typed_yaml import from_dict, merge, parse_overrides, read_yaml

AMP = ("none", "bf16", "fp16")


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
    loss: str = "ce"                    # "ce": CE on the time-mean output; "tet": TET loss
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
    progress: bool = True               # tqdm bars (rank 0 only)
    tensorboard: bool = True
    # The paper's reported accuracy for this setting (the recipe's `paper_reference`), shown in report.json.
    paper_accuracy: Optional[float] = None
    paper_reference: str = ""
    measure_batches: int = 0            # test batches for the firing-rate report; 0: all
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self):
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}, got {self.loss!r}"),
            (self.amp in AMP, f"amp must be one of {AMP}, got {self.amp!r}"),
            (self.T >= 1, f"T must be >= 1, got {self.T}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.min_lr <= self.lr, f"min_lr must be in [0, lr={self.lr}], got {self.min_lr}"),
            (0 <= self.warmup_epochs < self.epochs,
             f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.measure_batches >= 0, f"measure_batches must be >= 0, got {self.measure_batches}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 disables), got {self.grad_clip}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def run_id(self) -> str:
        return self.run_name or f"{self.name}-{self.neuron}-s{self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id


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


def load_config(recipe: str | Path | dict | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> TrainConfig:
    """Defaults < recipe (a YAML path or an already-read dict) < `base` < ``--set`` overrides."""
    data = recipe if isinstance(recipe, dict) else read_yaml(recipe) if recipe is not None else {}
    data = merge(_legacy(data), _legacy(base or {}), TrainConfig)
    data = merge(data, _legacy(parse_overrides(overrides or [])), TrainConfig)
    try:
        return from_dict(TrainConfig, data)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # a section's own validation (e.g. DataConfig)
        raise ConfigError(str(e)) from None
