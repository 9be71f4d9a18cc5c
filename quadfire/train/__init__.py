"""Training: the config (`TrainConfig`, `load_config`), the loop (`fit`), checkpoints,
DDP set-up, the paper recipes and the `quadfire train / eval / recipes / compare` commands.
See docs/training.md. The engine (and with it the models) loads on first use of `fit`."""
from .config import TrainConfig, load_config
from .recipes import list_recipes, read_recipe


def fit(cfg: TrainConfig, resume=None, smoke: bool = False) -> dict:
    """Train `cfg`; see `quadfire.train.engine.fit`."""
    from .engine import fit as _fit

    return _fit(cfg, resume=resume, smoke=smoke)


__all__ = ["TrainConfig", "load_config", "list_recipes", "read_recipe", "fit"]
